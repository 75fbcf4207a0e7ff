package room

import (
	"context"
	"encoding/json"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// Operations for the server API: rooms created, inspected and closed, and
// participants listed, removed, re-permissioned and muted by a trusted
// backend rather than by the participants themselves. They act on the
// rooms of this node only; in a cluster the caller forwards them to the
// node that hosts the room (RoomClaim.Owner). Errors carry core codes:
// not_found for an unknown room, participant or track, bad_request for
// invalid input, conflict, unavailable while draining or closing.

// Limits on what CreateRoom accepts.
const (
	MaxRoomNameLength = 256
	MaxRoomMetadata   = 4 << 10
)

// RoomOptions are the settings of a room made by CreateRoom.
type RoomOptions struct {
	// MaxParticipants bounds the room's participants (joins beyond get
	// room_full); 0 means the node's limit (Config.MaxParticipants),
	// which is also the most it may be.
	MaxParticipants int `json:"max_participants,omitempty"`
	// Metadata is opaque application data about the room, at most
	// MaxRoomMetadata bytes, kept with its cluster claim and reported in
	// room presence events.
	Metadata string `json:"metadata,omitempty"`
	// EmptyTimeout is how long the room stays while nobody is in it,
	// from its creation and again each time it empties; 0 means
	// Config.EmptyTimeout (default five minutes).
	EmptyTimeout time.Duration `json:"empty_timeout,omitempty"`
}

// normalize fills in the node's defaults.
func (o RoomOptions) normalize(cfg Config) RoomOptions {
	if o.MaxParticipants == 0 {
		o.MaxParticipants = cfg.MaxParticipants
	}
	if o.EmptyTimeout == 0 {
		o.EmptyTimeout = cfg.EmptyTimeout
	}
	return o
}

// validate reports the first invalid option.
func (o RoomOptions) validate(cfg Config) error {
	switch {
	case o.MaxParticipants < 0 || o.MaxParticipants > cfg.MaxParticipants:
		return core.Errorf(core.CodeBadRequest, "max_participants must be between 0 and %d, got %d", cfg.MaxParticipants, o.MaxParticipants)
	case len(o.Metadata) > MaxRoomMetadata:
		return core.Errorf(core.CodeBadRequest, "room metadata of %d bytes exceeds %d", len(o.Metadata), MaxRoomMetadata)
	case o.EmptyTimeout < 0:
		return core.Errorf(core.CodeBadRequest, "empty_timeout must not be negative")
	}
	return nil
}

// validRoomName checks a room name given to CreateRoom.
func validRoomName(name string) error {
	if name == "" || len(name) > MaxRoomNameLength || !utf8.ValidString(name) {
		return core.Errorf(core.CodeBadRequest, "room name must be 1 to %d bytes of UTF-8", MaxRoomNameLength)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return core.Errorf(core.CodeBadRequest, "room name must not contain control characters")
		}
	}
	return nil
}

// PublishedTrack is a published track with its server-side mute state.
type PublishedTrack struct {
	core.TrackInfo
	Muted bool `json:"muted"`
}

// RoomInfo describes a room on this node.
type RoomInfo struct {
	Name            string           `json:"name"`
	Created         time.Time        `json:"created"`
	Metadata        string           `json:"metadata,omitempty"`
	MaxParticipants int              `json:"max_participants"`
	EmptyTimeout    time.Duration    `json:"empty_timeout"` // nanoseconds in JSON
	Participants    int              `json:"participants"`
	Tracks          []PublishedTrack `json:"tracks"` // by track id
}

// ParticipantInfo describes a participant for the server API.
type ParticipantInfo struct {
	ID       string           `json:"id"`
	Identity string           `json:"identity"`
	Name     string           `json:"name,omitempty"`
	Metadata string           `json:"metadata,omitempty"`
	Grants   core.Grants      `json:"grants"`
	Joined   time.Time        `json:"joined"`
	Tracks   []PublishedTrack `json:"tracks"` // by track id
}

// CreateRoom makes room name exist on this node (claimed in a cluster, as
// a first join does) before anyone joins. It stays while empty until its
// empty timeout passes with nobody in it, or until CloseRoom. Creating a
// room that exists returns its info, and no error when opts equal its
// options once defaults are filled in (a room made by a join has the
// default options): the room is then kept while empty from now on;
// otherwise the error matches core.ErrConflict. In a cluster a room
// hosted by another node gets a core.CodeRedirect error; a draining node
// refuses with core.CodeUnavailable (single node) or a redirect.
func (m *Manager) CreateRoom(ctx context.Context, name string, opts RoomOptions) (RoomInfo, error) {
	if err := validRoomName(name); err != nil {
		return RoomInfo{}, err
	}
	if err := opts.validate(m.cfg); err != nil {
		return RoomInfo{}, err
	}
	opts = opts.normalize(m.cfg)
	r, err := m.room(name)
	if err != nil {
		return RoomInfo{}, err
	}
	defer m.release(r)
	if err := m.claim(ctx, r, opts.Metadata); err != nil {
		return RoomInfo{}, err
	}
	existed, err := m.adopt(r, opts)
	if err != nil {
		if core.CodeOf(err) == core.CodeConflict {
			return r.info(), err
		}
		return RoomInfo{}, err
	}
	if !existed {
		m.deps.Log.Info("room created", "room", name, "max_participants", opts.MaxParticipants, "empty_timeout", opts.EmptyTimeout)
	}
	return r.info(), nil
}

// adopt makes r a created room with opts, starting it unless it has
// started (existed); a started room with other options is a conflict.
func (m *Manager) adopt(r *Room, opts RoomOptions) (existed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.closedErrLocked(); err != nil {
		return false, err
	}
	if r.started && r.opts != opts {
		return true, core.Errorf(core.CodeConflict, "room %q exists with other options", r.name)
	}
	existed = r.started
	r.opts = opts
	r.startLocked()
	r.keep = true
	return existed, nil
}

// Room describes the room name, if it is on this node.
func (m *Manager) Room(name string) (RoomInfo, bool) {
	r := m.startedRoom(name)
	if r == nil {
		return RoomInfo{}, false
	}
	return r.info(), true
}

// RoomInfos describes every room on this node, by name.
func (m *Manager) RoomInfos() []RoomInfo {
	m.mu.Lock()
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	out := make([]RoomInfo, 0, len(rooms))
	for _, r := range rooms {
		r.mu.Lock()
		started := r.started
		r.mu.Unlock()
		if started {
			out = append(out, r.info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// startedRoom returns the room name if it is on this node and has
// started (a join still deciding does not make a room), else nil.
func (m *Manager) startedRoom(name string) *Room {
	m.mu.Lock()
	r := m.rooms[name]
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || r.removed {
		return nil
	}
	return r
}

// findRoom is startedRoom with a not_found error.
func (m *Manager) findRoom(name string) (*Room, error) {
	if r := m.startedRoom(name); r != nil {
		return r, nil
	}
	return nil, core.Errorf(core.CodeNotFound, "no room %q on this node", name)
}

func (r *Room) info() RoomInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := RoomInfo{
		Name: r.name, Created: r.created, Metadata: r.opts.Metadata, MaxParticipants: r.opts.MaxParticipants,
		EmptyTimeout: r.opts.EmptyTimeout, Participants: len(r.participants), Tracks: []PublishedTrack{},
	}
	for _, p := range r.participants {
		info.Tracks = append(info.Tracks, p.publishedLocked()...)
	}
	sort.Slice(info.Tracks, func(i, j int) bool { return info.Tracks[i].ID < info.Tracks[j].ID })
	return info
}

// publishedLocked lists p's published tracks by id. room.mu held.
func (p *Participant) publishedLocked() []PublishedTrack {
	out := make([]PublishedTrack, 0, len(p.tracks))
	for _, id := range sortedKeys(p.tracks) {
		t := p.tracks[id]
		out = append(out, PublishedTrack{TrackInfo: t.info, Muted: t.muted})
	}
	return out
}

// CloseRoom removes everyone from room: each participant leaves with
// reason "room_closed" (its client gets closing with code
// session_expired, reason "room_closed" and detail), and the room
// finishes (reason "closed") and is released in a cluster. It returns
// once everyone has left.
func (m *Manager) CloseRoom(ctx context.Context, name, detail string) error {
	r, err := m.findRoom(name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.endLocked(r, FinishClosed)
	m.mu.Unlock()
	r.flushPresence()
	ps := r.all()
	for _, p := range ps {
		p.remove(ReasonRoomClosed, detail)
	}
	m.deps.Log.Info("room closed", "room", name, "participants", len(ps), "detail", detail)
	return nil
}

// Participants describes the participants of room, by identity.
func (m *Manager) Participants(room string) ([]ParticipantInfo, error) {
	r, err := m.findRoom(room)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	out := make([]ParticipantInfo, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p.adminInfoLocked())
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Identity != out[j].Identity {
			return out[i].Identity < out[j].Identity
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Participant describes participant id of room.
func (m *Manager) Participant(room, id string) (ParticipantInfo, error) {
	p, err := m.findParticipant(room, id)
	if err != nil {
		return ParticipantInfo{}, err
	}
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.adminInfoLocked(), nil
}

// adminInfoLocked describes p for the server API. room.mu held.
func (p *Participant) adminInfoLocked() ParticipantInfo {
	return ParticipantInfo{
		ID: p.id, Identity: p.claims.Identity, Name: p.claims.Name, Metadata: p.claims.Metadata,
		Grants: p.grants, Joined: p.joinedAt, Tracks: p.publishedLocked(),
	}
}

// findParticipant returns participant id of room, or a not_found error.
func (m *Manager) findParticipant(room, id string) (*Participant, error) {
	r, err := m.findRoom(room)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	p := r.participants[id]
	r.mu.Unlock()
	if p == nil {
		return nil, core.Errorf(core.CodeNotFound, "no participant %q in room %q", id, room)
	}
	return p, nil
}

// RemoveParticipant removes participant id from room with reason
// "kicked": the others see it leave and its tracks unpublished, its client
// gets closing with code session_expired, reason "kicked" and detail.
func (m *Manager) RemoveParticipant(ctx context.Context, room, id, detail string) error {
	p, err := m.findParticipant(room, id)
	if err != nil {
		return err
	}
	p.remove(ReasonKicked, detail)
	p.log.Info("participant removed by the server API", "detail", detail)
	return nil
}

// checkPayload validates a data message payload.
func (m *Manager) checkPayload(payload []byte) error {
	if max := m.cfg.MaxDataPayload; len(payload) > max {
		return core.Errorf(core.CodeBadRequest, "data payload of %d bytes exceeds %d", len(payload), max)
	}
	if len(payload) == 0 || !json.Valid(payload) {
		return core.Errorf(core.CodeBadRequest, "data payload must be a JSON value")
	}
	return nil
}

// SendData delivers a data message from the server to everyone in room
// (to empty) or to the participants with the listed ids, and returns how
// many it reached. Clients see a data event with from "server"
// (protocol.ServerSender) and no from_identity; to is set for a message
// to listed participants. Unknown ids are skipped; when none of them is
// in the room the error matches core.ErrNotFound. The payload must be a
// JSON value within Config.MaxDataPayload.
func (m *Manager) SendData(ctx context.Context, room string, to []string, payload json.RawMessage) (int, error) {
	if err := m.checkPayload(payload); err != nil {
		return 0, err
	}
	r, err := m.findRoom(room)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(to) == 0 {
		ev := protocol.DataEvent{From: protocol.ServerSender, Payload: payload}
		r.broadcastLocked(nil, protocol.TypeData, ev)
		return len(r.participants), nil
	}
	n := 0
	seen := make(map[string]bool, len(to))
	for _, id := range to {
		p := r.participants[id]
		if p == nil || seen[id] {
			continue
		}
		seen[id] = true
		p.send(protocol.TypeData, protocol.DataEvent{From: protocol.ServerSender, To: id, Payload: payload})
		n++
	}
	if n == 0 {
		return 0, core.Errorf(core.CodeNotFound, "none of the %d participants is in room %q", len(to), room)
	}
	return n, nil
}
