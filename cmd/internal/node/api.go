package node

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/room"
	"github.com/parleyhq/parley/edge/api"
)

// The node's side of the server API (edge/api): rooms and participants
// over the room manager, API keys and idempotency records in the cluster
// state (or, on a single node, a key file in the data dir and memory),
// webhooks and signing keys over the webhook outbox, and where a room's
// requests run in a cluster.

// apiDeps assembles what the server API drives.
func (n *Node) apiDeps() (*api.Deps, error) {
	d := &api.Deps{
		Rooms: apiRooms{n}, Participants: apiRooms{n}, Plugins: pluginAdmin{n},
		Webhooks: webhookAdmin{n}, SigningKeys: webhookAdmin{n}, NodeID: n.id,
	}
	if n.clustered {
		key, err := forwardKey(n.clusterSecret)
		if err != nil {
			return nil, err
		}
		d.Keys, d.Idempotency, d.Cluster, d.ForwardKey = clusterKeys{n.cluster}, clusterIdempotency{n.cluster}, apiCluster{n}, key
		return d, nil
	}
	keys, err := openKeyFile(apiKeysFile(n.paths))
	if err != nil {
		return nil, err
	}
	d.Keys = keys
	return d, nil
}

// forwardKey derives the key nodes sign forwarded API requests with from
// the cluster secret (which every node holds, and nobody else).
func forwardKey(secret string) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(secret), []byte("parley cluster"), "parley api forward v1", 32)
}

// apiRooms implements api.Rooms and api.Participants over the node's room
// manager; ListRooms is cluster-wide on a cluster.
type apiRooms struct{ n *Node }

func roomOf(ri room.RoomInfo, node string) api.Room {
	return api.Room{
		Name: ri.Name, Participants: ri.Participants, Tracks: len(ri.Tracks), MaxParticipants: ri.MaxParticipants,
		Metadata: ri.Metadata, EmptyTimeout: int(ri.EmptyTimeout / time.Second), Node: node, Created: ri.Created,
	}
}

// ListRooms implements api.Rooms. On a cluster it lists every claimed room
// from the replica, after confirming with the leader that it is current;
// the rooms of this node carry their full description.
func (a apiRooms) ListRooms(ctx context.Context) ([]api.Room, error) {
	local := map[string]room.RoomInfo{}
	for _, ri := range a.n.rooms.RoomInfos() {
		local[ri.Name] = ri
	}
	s := a.n.store
	if s == nil {
		out := make([]api.Room, 0, len(local))
		for _, ri := range a.n.rooms.RoomInfos() {
			out = append(out, roomOf(ri, a.n.id))
		}
		return out, nil
	}
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	var out []api.Room
	for _, c := range s.Rooms() {
		if ri, ok := local[c.Room]; ok && c.Owner == a.n.id {
			out = append(out, roomOf(ri, a.n.id))
			continue
		}
		r := api.Room{Name: c.Room, Node: c.Owner, Created: c.Created, Metadata: c.Metadata}
		for _, p := range s.Participants(c.Room) {
			r.Participants++
			r.Tracks += len(p.Tracks)
		}
		out = append(out, r)
	}
	return out, nil
}

// GetRoom implements api.Rooms.
func (a apiRooms) GetRoom(_ context.Context, name string) (api.Room, error) {
	ri, ok := a.n.rooms.Room(name)
	if !ok {
		return api.Room{}, core.Errorf(core.CodeNotFound, "no room %q on this node", name)
	}
	return roomOf(ri, a.n.id), nil
}

// CreateRoom implements api.Rooms.
func (a apiRooms) CreateRoom(ctx context.Context, name string, o api.RoomOptions) (api.Room, error) {
	ri, err := a.n.rooms.CreateRoom(ctx, name, room.RoomOptions{MaxParticipants: o.MaxParticipants, Metadata: o.Metadata, EmptyTimeout: o.EmptyTimeout})
	if err != nil {
		return api.Room{}, err
	}
	return roomOf(ri, a.n.id), nil
}

// CloseRoom implements api.Rooms.
func (a apiRooms) CloseRoom(ctx context.Context, name, reason string) error {
	return a.n.rooms.CloseRoom(ctx, name, reason)
}

// ListParticipants implements api.Participants.
func (a apiRooms) ListParticipants(_ context.Context, name string) ([]api.Participant, error) {
	return a.n.rooms.Participants(name)
}

// GetParticipant implements api.Participants.
func (a apiRooms) GetParticipant(_ context.Context, name, id string) (api.Participant, error) {
	return a.n.rooms.Participant(name, id)
}

// RemoveParticipant implements api.Participants.
func (a apiRooms) RemoveParticipant(ctx context.Context, name, id, reason string) error {
	return a.n.rooms.RemoveParticipant(ctx, name, id, reason)
}

// UpdateGrants implements api.Participants.
func (a apiRooms) UpdateGrants(ctx context.Context, name, id string, g core.Grants) (api.Participant, error) {
	if err := a.n.rooms.UpdateGrants(ctx, name, id, g); err != nil {
		return api.Participant{}, err
	}
	return a.n.rooms.Participant(name, id)
}

// MuteTrack implements api.Participants.
func (a apiRooms) MuteTrack(ctx context.Context, name, participant, track string, muted bool) error {
	return a.n.rooms.MuteTrack(ctx, name, participant, track, muted)
}

// SendData implements api.Participants.
func (a apiRooms) SendData(ctx context.Context, name string, to []string, payload json.RawMessage) (int, error) {
	return a.n.rooms.SendData(ctx, name, to, payload)
}

// apiCluster implements api.Cluster from the node's replica.
type apiCluster struct{ n *Node }

// RoomOwner implements api.Cluster: the HTTP base URL of the node whose
// claim the room has, when that is another node. A room this node neither
// hosts nor sees claimed may have been claimed a moment ago elsewhere: the
// replica is brought up to date (confirmed with the leader) before saying
// so. The URL comes from the owner's public (signaling) URL:
// ws(s)://host/v1/signal serves the API at http(s)://host.
func (a apiCluster) RoomOwner(ctx context.Context, name string) (string, bool, error) {
	s := a.n.store
	if s == nil {
		return "", false, nil
	}
	c, ok := s.Room(name)
	if !ok {
		if _, local := a.n.rooms.Room(name); local {
			return "", false, nil
		}
		if err := s.Sync(ctx); err != nil {
			return "", false, err
		}
		if c, ok = s.Room(name); !ok {
			return "", false, nil
		}
	}
	if c.Owner == a.n.id {
		return "", false, nil
	}
	pub := c.OwnerURL
	if nd, ok := s.Node(c.Owner); ok && nd.PublicURL != "" {
		pub = nd.PublicURL
	}
	if pub == "" {
		return "", false, core.Errorf(core.CodeUnavailable, "room %q is hosted by node %s, whose address is unknown", name, c.Owner)
	}
	return apiBase(pub), true, nil
}

// apiBase turns a signaling URL into the base URL of the same server.
func apiBase(signal string) string {
	u, err := url.Parse(signal)
	if err != nil {
		return signal
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1/signal")
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/")
}
