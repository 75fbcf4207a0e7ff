package room

import (
	"context"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
)

// Presence. Every change of a room that presence reports (the room
// starting or finishing, a participant joining or leaving, a track
// published or unpublished) queues its event on the manager's presence
// queue while the room's mutex is held, so a room's events are queued in
// the order its changes took effect; a room finishes under the manager's
// mutex before a room of the same name can start again, so a name's
// events keep their order across rooms too. Whoever made a change then
// calls flushPresence, without locks, which hands the queued events to
// Deps.Presence one at a time in queue order: events never overtake each
// other, even when several goroutines change rooms at once. Per room the
// order is room_started first, then joins, tracks and departures (a
// leaving participant's track_unpublished before its left), and
// room_finished last.

// presenceQueue holds presence events until they are delivered.
type presenceQueue struct {
	mu      sync.Mutex // a leaf lock: taken under Room.mu and Manager.mu
	evs     []core.PresenceEvent
	deliver sync.Mutex // serializes delivery; taken without other locks
}

// queueLocked appends a presence event of the room. r.mu held.
func (r *Room) queueLocked(ev core.PresenceEvent) {
	ev.Room, ev.Node, ev.At = r.name, r.m.cfg.NodeID, time.Now()
	q := &r.m.presence
	q.mu.Lock()
	q.evs = append(q.evs, ev)
	q.mu.Unlock()
}

// startLocked marks the room started, queueing room_started once. r.mu
// held.
func (r *Room) startLocked() {
	if r.started {
		return
	}
	r.started = true
	r.created = time.Now()
	r.queueLocked(core.PresenceEvent{Kind: core.PresenceRoomStarted, Metadata: r.opts.Metadata})
}

// finishLocked queues room_finished once, for a started room that was
// removed from the manager and is empty. r.mu held.
func (r *Room) finishLocked() {
	if !r.started || r.finished {
		return
	}
	r.finished = true
	r.queueLocked(core.PresenceEvent{Kind: core.PresenceRoomFinished, Metadata: r.opts.Metadata, Reason: r.ending})
}

// participantEventLocked queues joined or left for p. r.mu held.
func (r *Room) participantEventLocked(kind core.PresenceKind, p *Participant, reason string) {
	r.queueLocked(core.PresenceEvent{
		Kind: kind, Identity: p.claims.Identity, ParticipantID: p.id, Metadata: p.claims.Metadata, Reason: reason,
	})
}

// trackEventLocked queues track_published or track_unpublished for
// owner's track t. r.mu held.
func (r *Room) trackEventLocked(kind core.PresenceKind, owner *Participant, t core.TrackInfo) {
	r.queueLocked(core.PresenceEvent{
		Kind: kind, Identity: owner.claims.Identity, ParticipantID: owner.id, Metadata: owner.claims.Metadata,
		TrackID: t.ID, TrackKind: t.Kind,
	})
}

// flushPresence delivers the queued events in order. Call it without
// locks after every change of r that may have queued one.
func (r *Room) flushPresence() { r.m.flushPresence() }

// flushPresence delivers the queued events in order.
func (m *Manager) flushPresence() {
	q := &m.presence
	q.deliver.Lock()
	defer q.deliver.Unlock()
	for {
		q.mu.Lock()
		evs := q.evs
		q.evs = nil
		q.mu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			m.deps.Presence.Presence(context.Background(), ev)
		}
	}
}
