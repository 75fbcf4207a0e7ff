package room

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/core"
)

// Manager owns the rooms of one node. Rooms are created by the first join
// and removed when their last participant leaves, or created by
// CreateRoom and kept while empty for their empty timeout; CloseRoom
// removes one at once.
//
// All methods are safe for concurrent use.
type Manager struct {
	cfg     Config
	deps    Deps
	retired retired // counters of ended tracks

	mu        sync.Mutex
	rooms     map[string]*Room
	releasing map[string]chan struct{} // claim releases in flight, by room
	closed    bool

	releases sync.WaitGroup // claim releases in flight
	draining atomic.Bool
	presence presenceQueue // see presence.go
}

// NewManager returns a Manager over the given media engine and hooks.
func NewManager(cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := deps.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, deps: d, rooms: make(map[string]*Room), releasing: make(map[string]chan struct{})}, nil
}

// JoinOptions are a joining participant's choices.
type JoinOptions struct {
	AutoSubscribe bool
	Metadata      string
}

// Join admits the bearer of claims to the room its token names, after the
// policy allowed it. Events for the participant go to sink. In a cluster,
// a room not yet on this node is claimed for it first; a room another node
// hosts is answered with a core.CodeRedirect error naming that node.
func (m *Manager) Join(ctx context.Context, claims core.Claims, opts JoinOptions, sink Sink) (*Participant, error) {
	if opts.Metadata != "" {
		claims.Metadata = opts.Metadata
	}
	r, err := m.room(claims.Room)
	if err != nil {
		return nil, err
	}
	if err := m.claim(ctx, r, ""); err != nil {
		m.release(r)
		return nil, err
	}
	dec, err := m.deps.Policy.Decide(ctx, core.PolicyRequest{
		Action: core.ActionJoin, Room: claims.Room, Claims: claims, Participants: r.count(),
	})
	if err := denial(dec, err, "join"); err != nil {
		m.release(r)
		return nil, err
	}
	if dec.Metadata != "" {
		claims.Metadata = dec.Metadata
	}
	if dec.Grants != nil {
		claims.Grants = claims.Grants.Narrow(*dec.Grants)
	}
	p, err := r.admit(claims, opts, dec.MaxBitrate, sink)
	m.release(r)
	if err != nil {
		return nil, err
	}
	m.awaitPresence(ctx)
	return p, nil
}

// presenceWait bounds how long a join waits for its presence to be
// durable before it is confirmed anyway (presence fails open).
const presenceWait = 2 * time.Second

// awaitPresence waits until the presence reported so far is durable, when
// Deps.Presence queues it (core.PresenceFlusher).
func (m *Manager) awaitPresence(ctx context.Context) {
	f, ok := m.deps.Presence.(core.PresenceFlusher)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, presenceWait)
	defer cancel()
	if err := f.FlushPresence(ctx); err != nil {
		m.deps.Log.Warn("join confirmed before its presence was durable", "err", err)
	}
}

// denial turns a policy outcome into the error the client sees, or nil.
func denial(dec core.Decision, err error, what string) error {
	if err != nil {
		// Fail closed. The client sees the policy's own message (for a
		// plugin: which one is unavailable), never the cause's details.
		var ce *core.Error
		if errors.As(err, &ce) && ce.Code != core.CodeInternal {
			return &core.Error{Code: ce.Code, Message: what + " denied: " + ce.Message, Err: err}
		}
		return &core.Error{Code: core.CodeForbidden, Message: what + " denied: policy failed", Err: err}
	}
	if dec.Allow {
		return nil
	}
	code := dec.Code
	if code == "" {
		code = core.CodeForbidden
	}
	reason := dec.Reason
	if reason == "" {
		reason = what + " denied by policy"
	}
	return &core.Error{Code: code, Message: reason}
}

// room returns the named room, creating it, and pins it against removal
// until release. A draining node without a cluster creates no room (in a
// cluster the claim redirects instead).
func (m *Manager) room(name string) (*Room, error) {
	if name == "" {
		return nil, core.Errorf(core.CodeInvalidToken, "token names no room")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, core.ErrUnavailable
	}
	r := m.rooms[name]
	if r == nil {
		if m.Draining() && m.deps.Cluster == nil {
			return nil, core.Errorf(core.CodeUnavailable, "this node is draining and takes no new room: join again in a moment")
		}
		r = newRoom(name, m)
		r.prior = m.releasing[name]
		m.rooms[name] = r
	}
	r.pins++
	return r, nil
}

// release unpins r and removes it when empty.
func (m *Manager) release(r *Room) {
	m.mu.Lock()
	r.pins--
	m.removeIfEmptyLocked(r)
	m.mu.Unlock()
	r.flushPresence()
}

// removeIfEmptyLocked removes r when nobody is in it or on the way in,
// unless it is a created room, whose empty timer it starts instead. The
// caller flushes r's presence after unlocking. m.mu held.
func (m *Manager) removeIfEmptyLocked(r *Room) {
	if r.pins != 0 || r.count() != 0 || m.rooms[r.name] != r {
		return
	}
	if r.keep {
		m.armEmptyTimerLocked(r)
		return
	}
	m.detachLocked(r, FinishEmpty)
	m.releaseLocked(r)
}

// detachLocked takes r out of the manager: it admits no one any more, and
// finishes (room_finished) with reason, or the reason decided earlier, as
// soon as it is empty. The caller releases the cluster claim if it should
// be, and flushes r's presence after unlocking. m.mu held.
func (m *Manager) detachLocked(r *Room, reason string) {
	if m.rooms[r.name] == r {
		delete(m.rooms, r.name)
	}
	if r.emptyTimer != nil {
		r.emptyTimer.Stop()
		r.emptyTimer = nil
	}
	r.keep = false
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = true
	if r.ending == "" {
		r.ending = reason
	}
	if len(r.participants) == 0 {
		r.finishLocked()
	}
}

// armEmptyTimerLocked (re)starts the empty timeout of a created room that
// just became empty. m.mu held.
func (m *Manager) armEmptyTimerLocked(r *Room) {
	if r.emptyTimer != nil {
		r.emptyTimer.Stop()
	}
	r.mu.Lock()
	timeout := r.opts.EmptyTimeout
	r.mu.Unlock()
	r.emptyGen++
	gen := r.emptyGen
	r.emptyTimer = time.AfterFunc(timeout, func() { m.emptyTimeout(r, gen) })
}

// emptyTimeout removes a created room whose empty timer of generation gen
// fired, if it is still empty and that timer is still its latest.
func (m *Manager) emptyTimeout(r *Room, gen uint64) {
	m.mu.Lock()
	if r.emptyGen != gen || r.emptyTimer == nil || m.rooms[r.name] != r {
		m.mu.Unlock()
		return
	}
	r.emptyTimer = nil
	if r.pins == 0 && r.count() == 0 {
		r.keep = false
		m.removeIfEmptyLocked(r)
		m.deps.Log.Info("room removed after its empty timeout", "room", r.name)
	}
	m.mu.Unlock()
	r.flushPresence()
}

// roomEmptied is called by a room after its last participant left.
func (m *Manager) roomEmptied(r *Room) {
	m.mu.Lock()
	m.removeIfEmptyLocked(r)
	m.mu.Unlock()
	r.flushPresence()
}

// RoomSummary describes a room for the info and admin endpoints.
type RoomSummary struct {
	Name         string `json:"name"`
	Participants int    `json:"participants"`
	Tracks       int    `json:"tracks"`
}

// Rooms lists the rooms on this node, by name.
func (m *Manager) Rooms() []RoomSummary {
	m.mu.Lock()
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	out := make([]RoomSummary, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, r.summary())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close removes every participant with reason and every room (which
// finish with reason "shutdown"), and refuses new joins. In a cluster it
// waits (for two seconds at most) until the claims of the emptied rooms
// are released.
func (m *Manager) Close(reason string) {
	defer m.waitReleases()
	m.mu.Lock()
	m.closed = true
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
		m.endLocked(r, FinishShutdown)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		r.flushPresence()
		for _, p := range r.all() {
			p.Leave(reason)
		}
	}
}

// endLocked decides that r finishes for reason: it admits no one any
// more, and it is removed now if empty, else when its last participant
// leaves. The caller removes the participants and flushes r's presence
// after unlocking. m.mu held.
func (m *Manager) endLocked(r *Room, reason string) {
	r.keep = false
	if r.emptyTimer != nil {
		r.emptyTimer.Stop()
		r.emptyTimer = nil
	}
	r.mu.Lock()
	if r.ending == "" {
		r.ending = reason
	}
	r.mu.Unlock()
	m.removeIfEmptyLocked(r)
}

func (m *Manager) String() string { return fmt.Sprintf("room.Manager(%d rooms)", len(m.Rooms())) }
