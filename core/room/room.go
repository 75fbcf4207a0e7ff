package room

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// Room is one room's participants and published tracks.
//
// Lock order: Room.mu before Participant.mu. Sinks are called with Room.mu
// held and never block.
type Room struct {
	name string
	m    *Manager
	pins int // guarded by m.mu: joins in progress

	// Cluster placement (see cluster.go). epoch is written once, by the
	// claim, before claimed is set.
	claimOnce sync.Once
	claimErr  error
	claimed   atomic.Bool   // the claim has been settled
	epoch     uint64        // the claim's epoch; 0 without one
	prior     chan struct{} // closed when an earlier claim's release ends; nil if none
	lost      atomic.Bool   // the cluster took the room away: admit no one

	mu           sync.Mutex
	participants map[string]*Participant // by participant id
	byIdentity   map[string]*Participant
}

func newRoom(name string, m *Manager) *Room {
	return &Room{
		name: name, m: m,
		participants: make(map[string]*Participant),
		byIdentity:   make(map[string]*Participant),
	}
}

// Name returns the room's name.
func (r *Room) Name() string { return r.name }

// claimSettled reports whether the room's cluster claim was decided.
func (r *Room) claimSettled() bool { return r.claimed.Load() }

func (r *Room) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.participants)
}

func (r *Room) all() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

func (r *Room) summary() RoomSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := RoomSummary{Name: r.name, Participants: len(r.participants)}
	for _, p := range r.participants {
		s.Tracks += len(p.tracks)
	}
	return s
}

// admit adds a participant. A participant already present with the same
// identity is replaced: it leaves with ReasonReplaced.
func (r *Room) admit(c core.Claims, opts JoinOptions, maxBitrate int, sink Sink) (*Participant, error) {
	if r.lost.Load() {
		return nil, core.Errorf(core.CodeUnavailable, "room %q is moving to another node; join again", r.name)
	}
	r.mu.Lock()
	old := r.byIdentity[c.Identity]
	n := len(r.participants)
	if old != nil {
		n--
	}
	if n >= r.m.cfg.MaxParticipants {
		r.mu.Unlock()
		return nil, core.Errorf(core.CodeRoomFull, "room %q is full (%d participants)", r.name, n)
	}
	r.mu.Unlock()
	if old != nil {
		old.Leave(ReasonReplaced)
	}
	p, err := newParticipant(r, c, opts, maxBitrate, sink)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.participants) >= r.m.cfg.MaxParticipants || r.byIdentity[c.Identity] != nil {
		r.mu.Unlock()
		p.closeMedia()
		return nil, core.Errorf(core.CodeRoomFull, "room %q is full", r.name)
	}
	r.participants[p.id] = p
	r.byIdentity[c.Identity] = p
	info := p.infoLocked()
	for _, o := range r.participants {
		if o != p {
			o.send(protocol.TypeParticipantJoined, info)
		}
	}
	wanted := r.tracksFor(p)
	r.mu.Unlock()
	p.subscribeAll(wanted)
	return p, nil
}

// tracksFor lists the tracks p subscribes to automatically. r.mu held.
func (r *Room) tracksFor(p *Participant) []core.TrackInfo {
	if !p.autoSubscribe || !p.claims.Grants.CanSubscribe {
		return nil
	}
	var out []core.TrackInfo
	for _, o := range r.participants {
		if o == p {
			continue
		}
		for _, t := range o.tracks {
			out = append(out, t.info)
		}
	}
	return out
}

// snapshotFor describes the room as seen by p: every other participant.
func (r *Room) snapshotFor(p *Participant) protocol.RoomInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := protocol.RoomInfo{Name: r.name, Participants: []protocol.ParticipantInfo{}}
	for _, o := range r.participants {
		if o != p {
			info.Participants = append(info.Participants, o.infoLocked())
		}
	}
	sort.Slice(info.Participants, func(i, j int) bool {
		return info.Participants[i].Identity < info.Participants[j].Identity
	})
	return info
}

// track finds a published track by id. r.mu held.
func (r *Room) trackLocked(id string) (*Participant, *published) {
	for _, o := range r.participants {
		if t := o.tracks[id]; t != nil {
			return o, t
		}
	}
	return nil, nil
}

// broadcastLocked sends an event to every participant but skip. r.mu held.
func (r *Room) broadcastLocked(skip *Participant, typ string, data any) {
	for _, o := range r.participants {
		if o != skip {
			o.send(typ, data)
		}
	}
}
