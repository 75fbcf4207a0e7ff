package room

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// Room is one room's participants and published tracks.
//
// Lock order: Manager.mu before Room.mu. Sinks are called with Room.mu
// held and never block.
type Room struct {
	name string
	m    *Manager

	// guarded by m.mu
	pins       int         // joins and creations in progress
	keep       bool        // made by CreateRoom: stays while empty until emptyTimer fires
	emptyTimer *time.Timer // runs while a kept room is empty
	emptyGen   uint64      // counts emptyTimer starts

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
	opts         RoomOptions // normalized (see RoomOptions.normalize)
	created      time.Time   // when it started
	started      bool        // room_started queued: it has had a participant or was created
	finished     bool        // room_finished queued
	removed      bool        // no longer in the manager's map
	ending       string      // why the room finishes, once that is decided; it admits no one then
}

func newRoom(name string, m *Manager) *Room {
	return &Room{
		name: name, m: m,
		participants: make(map[string]*Participant),
		byIdentity:   make(map[string]*Participant),
		opts:         RoomOptions{}.normalize(m.cfg),
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

// closedErrLocked is the error for a join of a room that admits no one.
// r.mu held.
func (r *Room) closedErrLocked() error {
	if r.ending != "" || r.removed {
		return core.Errorf(core.CodeUnavailable, "room %q is closing; join again", r.name)
	}
	return nil
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
	err := r.closedErrLocked()
	if err == nil && n >= r.opts.MaxParticipants {
		err = core.Errorf(core.CodeRoomFull, "room %q is full (%d participants)", r.name, n)
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.Leave(ReasonReplaced)
	}
	p, err := newParticipant(r, c, opts, maxBitrate, sink)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if err := r.closedErrLocked(); err != nil {
		r.mu.Unlock()
		p.closeMedia()
		return nil, err
	}
	if len(r.participants) >= r.opts.MaxParticipants || r.byIdentity[c.Identity] != nil {
		r.mu.Unlock()
		p.closeMedia()
		return nil, core.Errorf(core.CodeRoomFull, "room %q is full", r.name)
	}
	r.startLocked()
	r.participants[p.id] = p
	r.byIdentity[c.Identity] = p
	r.participantEventLocked(core.PresenceJoined, p, "")
	info := p.infoLocked()
	for _, o := range r.participants {
		if o != p {
			o.send(protocol.TypeParticipantJoined, info)
		}
	}
	wanted := r.tracksFor(p)
	r.mu.Unlock()
	r.flushPresence()
	p.subscribeAll(wanted)
	return p, nil
}

// tracksFor lists the tracks p subscribes to automatically. r.mu held.
func (r *Room) tracksFor(p *Participant) []core.TrackInfo {
	if !p.autoSubscribe || !p.grants.CanSubscribe {
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

// sortedKeys returns the keys of m in order, for a deterministic event
// order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
