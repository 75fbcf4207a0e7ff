package raftstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
)

// RecordPresence commits presence changes in order as one command
// (core.ClusterState). Changes without a node are taken as this node's.
// Room changes (room_started, room_finished) are dropped: in a cluster the
// state machine journals them itself when a room is claimed and released.
func (s *Store) RecordPresence(ctx context.Context, changes ...core.PresenceChange) error {
	changes = slices.DeleteFunc(slices.Clone(changes), func(c core.PresenceChange) bool { return roomKind(c.Kind) })
	if len(changes) == 0 {
		return nil
	}
	_, err := s.Apply(ctx, &Presence{Changes: s.entries(changes)})
	return err
}

func roomKind(k core.PresenceKind) bool {
	return k == core.PresenceRoomStarted || k == core.PresenceRoomFinished
}

func (s *Store) entries(changes []core.PresenceChange) []PresenceEntry {
	out := make([]PresenceEntry, len(changes))
	for i, c := range changes {
		if c.Node == "" {
			c.Node = s.id
		}
		out[i] = entryOf(c)
	}
	return out
}

// Presence queues ev to be committed (core.Presence) and returns at once
// (room events are ignored, see RecordPresence):
// presence fails open. A worker commits queued changes in order, batched,
// retrying each batch under its request id until it is committed.
// Changes still queued at Shutdown are flushed within Shutdown's context;
// beyond that (or with more than maxPresenceQueue waiting) they are
// dropped and logged, and the leader's failure handling ends the node's
// presence in their stead.
func (s *Store) Presence(_ context.Context, ev core.PresenceEvent) {
	s.pres.push(core.PresenceChange{PresenceEvent: ev})
}

// FlushPresence waits until the presence changes queued before the call
// are committed (core.PresenceFlusher), or ctx ends.
func (s *Store) FlushPresence(ctx context.Context) error {
	s.pres.flush(ctx)
	if !s.pres.empty() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("raftstore: presence not yet committed: %w", err)
		}
		return errors.New("raftstore: presence not yet committed")
	}
	return nil
}

const (
	maxPresenceQueue = 10000
	presenceBatch    = 256
)

type presenceQueue struct {
	s     *Store
	mu    sync.Mutex
	queue []core.PresenceChange
	busy  bool // a batch is being committed
	wake  chan struct{}
	idle  chan struct{} // signalled when the queue empties
}

func newPresenceQueue(s *Store) *presenceQueue {
	return &presenceQueue{s: s, wake: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
}

func (q *presenceQueue) push(c core.PresenceChange) {
	if roomKind(c.Kind) {
		return
	}
	q.mu.Lock()
	if len(q.queue) >= maxPresenceQueue {
		q.mu.Unlock()
		q.s.log.Warn("presence queue full; dropping change", "kind", c.Kind, "participant", c.ParticipantID)
		return
	}
	q.queue = append(q.queue, c)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes the next batch.
func (q *presenceQueue) take() []core.PresenceChange {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.queue), presenceBatch)
	batch := q.queue[:n:n]
	q.queue = q.queue[n:]
	q.busy = n > 0
	return batch
}

func (q *presenceQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue) == 0 && !q.busy
}

// run commits batches until the Store shuts down.
func (q *presenceQueue) run() {
	for {
		batch := q.take()
		if len(batch) == 0 {
			select {
			case q.idle <- struct{}{}:
			default:
			}
			select {
			case <-q.s.ctx.Done():
				return
			case <-q.wake:
			}
			continue
		}
		q.commit(q.s.ctx, batch)
	}
}

// commit applies one batch, retrying with the same request id.
func (q *presenceQueue) commit(ctx context.Context, batch []core.PresenceChange) {
	cmd := &Presence{Changes: q.s.entries(batch)}
	cmd.RequestID = core.NewID("RQ_")
	for {
		_, err := q.s.Apply(ctx, cmd)
		if err == nil || errors.Is(err, ErrBadCommand) || errors.Is(err, ErrTooLarge) {
			if err != nil {
				q.s.log.Error("presence batch rejected", "error", err, "changes", len(batch))
			}
			return
		}
		if ctx.Err() != nil {
			q.s.log.Warn("presence changes not committed at shutdown", "changes", len(batch), "error", err)
			return
		}
		q.s.log.Warn("committing presence failed; retrying", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// flush waits, within ctx and the apply timeout, until the queue is empty.
func (q *presenceQueue) flush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, q.s.cfg.ApplyTimeout)
	defer cancel()
	for !q.empty() {
		select {
		case <-q.idle:
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
