package room

import (
	"context"
	"time"

	"github.com/parleyhq/parley/core"
)

// Presence. Every change of a room that presence reports (the room
// starting or finishing, a participant joining or leaving, a track
// published or unpublished) queues its event on the room while the room's
// mutex is held, so the queue is in the order the changes took effect.
// Whoever made a change then calls flushPresence, without locks, which
// hands the queued events to Deps.Presence one at a time in that order: a
// room's events never overtake each other, even when several goroutines
// change the room at once. Per room the order is room_started first, then
// joins, tracks and departures (a leaving participant's track_unpublished
// before its left), and room_finished last.

// queueLocked appends a presence event of the room. r.mu held.
func (r *Room) queueLocked(ev core.PresenceEvent) {
	ev.Room, ev.Node, ev.At = r.name, r.m.cfg.NodeID, time.Now()
	r.presence = append(r.presence, ev)
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
// locks after every change that may have queued one.
func (r *Room) flushPresence() {
	r.deliver.Lock()
	defer r.deliver.Unlock()
	for {
		r.mu.Lock()
		evs := r.presence
		r.presence = nil
		r.mu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			r.m.deps.Presence.Presence(context.Background(), ev)
		}
	}
}
