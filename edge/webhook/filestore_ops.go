package webhook

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
)

// index rebuilds the id sets from the state. Callers hold s.mu (or own s).
func (s *FileStore) index() {
	s.pendingID = make(map[string]bool, len(s.st.Pending))
	for _, w := range s.st.Pending {
		s.pendingID[w.ID] = true
	}
	s.deadID = make(map[string]bool, len(s.st.Dead))
	for _, w := range s.st.Dead {
		s.deadID[w.ID] = true
	}
}

// apply makes the change rec describes. It must give the same state on
// replay as when the record was written: every value comes from rec.
func (s *FileStore) apply(rec *record) {
	st := &s.st
	st.LSN = rec.LSN
	switch rec.Op {
	case opEvent:
		st.Journal = append(st.Journal, *rec.Event)
		st.LastEvent = max(st.LastEvent, rec.Event.Seq)
		if over := len(st.Journal) - s.maxJournal; over > 0 {
			st.Journal = append(st.Journal[:0:0], st.Journal[over:]...)
		}
	case opEnqueue:
		st.Cursor = rec.To
		i := 0
		for i < len(st.Journal) && st.Journal[i].Seq <= rec.To {
			i++
		}
		st.Journal = st.Journal[i:]
		s.addPending(rec.Items)
		s.addDead(rec.Dead)
	case opSettle:
		s.removePending(rec.IDs)
		s.removePending(ids(rec.Dead))
		s.addDead(rec.Dead)
	case opClear:
		if rec.Flag {
			s.removeDead(rec.IDs)
		} else {
			s.removePending(rec.IDs)
		}
	case opRetry:
		s.removeDead(ids(rec.Items))
		s.addPending(rec.Items)
	case opKeys:
		st.Keys = rec.Keys
	}
}

func ids(ws []core.Webhook) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

func (s *FileStore) addPending(ws []core.Webhook) {
	for _, w := range ws {
		if s.pendingID[w.ID] {
			continue
		}
		s.st.Pending = append(s.st.Pending, w)
		s.pendingID[w.ID] = true
		s.st.LastSeq = max(s.st.LastSeq, w.Seq)
	}
}

func (s *FileStore) addDead(ws []core.Webhook) {
	for _, w := range ws {
		if s.deadID[w.ID] {
			continue
		}
		s.st.Dead = append(s.st.Dead, w)
		s.deadID[w.ID] = true
		s.st.LastSeq = max(s.st.LastSeq, w.Seq)
	}
	if over := len(s.st.Dead) - s.maxDead; over > 0 {
		for _, w := range s.st.Dead[:over] {
			delete(s.deadID, w.ID)
		}
		s.st.Dead = append(s.st.Dead[:0:0], s.st.Dead[over:]...)
	}
}

func (s *FileStore) removePending(idList []string) {
	s.st.Pending = remove(s.st.Pending, s.pendingID, idList)
}

func (s *FileStore) removeDead(idList []string) {
	s.st.Dead = remove(s.st.Dead, s.deadID, idList)
}

// remove drops the webhooks with the given ids from list and from set.
func remove(list []core.Webhook, set map[string]bool, idList []string) []core.Webhook {
	drop := make(map[string]bool, len(idList))
	for _, id := range idList {
		if set[id] {
			drop[id] = true
			delete(set, id)
		}
	}
	if len(drop) == 0 {
		return list
	}
	out := list[:0]
	for _, w := range list {
		if !drop[w.ID] {
			out = append(out, w)
		}
	}
	clear(list[len(out):])
	return out
}

// OnCommit sets fn to be called (outside the store's lock) after each
// presence event is committed, e.g. Pipeline.Notify. Set it before use.
func (s *FileStore) OnCommit(fn func()) {
	s.mu.Lock()
	s.onCommit = fn
	s.mu.Unlock()
}

// Presence appends ev to the journal durably, assigning its Seq and a
// stable ID (and At, when zero). It implements core.Presence: a failure
// is logged, as presence fails open.
func (s *FileStore) Presence(ctx context.Context, ev core.PresenceEvent) {
	if _, err := s.AppendPresence(ctx, ev); err != nil {
		s.log.Error("presence event not recorded; its webhooks will not be sent", "kind", ev.Kind, "room", ev.Room, "identity", ev.Identity, "err", err)
	}
}

// eventBatch is presence events committed together.
type eventBatch struct {
	evs     []core.PresenceEvent
	entries []core.JournalEntry
	err     error
	done    chan struct{}
}

// AppendPresence is Presence returning the committed entry or the error.
// Concurrent calls share writes: while one caller commits, the others
// gather into the next batch, which it commits too (one fsync for all).
func (s *FileStore) AppendPresence(ctx context.Context, ev core.PresenceEvent) (core.JournalEntry, error) {
	if err := ctx.Err(); err != nil {
		return core.JournalEntry{}, err
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	s.gmu.Lock()
	if s.gather == nil {
		s.gather = &eventBatch{done: make(chan struct{})}
	}
	b, i := s.gather, len(s.gather.evs)
	b.evs = append(b.evs, ev)
	if !s.leading {
		s.leading = true
		for s.gather != nil {
			next := s.gather
			s.gather = nil
			s.gmu.Unlock()
			s.commitEvents(next)
			s.gmu.Lock()
		}
		s.leading = false
	}
	s.gmu.Unlock()
	<-b.done
	if b.err != nil {
		return core.JournalEntry{}, b.err
	}
	return b.entries[i], nil
}

// commitEvents assigns the batch's sequence numbers and ids, commits it
// and wakes its callers.
func (s *FileStore) commitEvents(b *eventBatch) {
	defer close(b.done)
	s.mu.Lock()
	recs := make([]*record, len(b.evs))
	b.entries = make([]core.JournalEntry, len(b.evs))
	for i, ev := range b.evs {
		seq := s.st.LastEvent + 1 + uint64(i)
		ev.ID = "EV_" + s.st.StoreID + "_" + strconv.FormatUint(seq, 10)
		b.entries[i] = core.JournalEntry{Seq: seq, Event: ev}
		recs[i] = &record{Op: opEvent, Event: &b.entries[i]}
	}
	b.err = s.commit(recs...)
	fn := s.onCommit
	s.mu.Unlock()
	if b.err == nil && fn != nil {
		fn()
	}
}

// PresenceJournal implements Journal.
func (s *FileStore) PresenceJournal(after uint64, limit int) ([]core.JournalEntry, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.st.Journal
	if len(j) == 0 {
		if s.st.LastEvent > after {
			return nil, s.st.LastEvent - after
		}
		return nil, 0
	}
	var dropped uint64
	first := j[0].Seq
	start := 0
	if after+1 < first {
		dropped = first - after - 1
	} else {
		start = int(min(after+1-first, uint64(len(j))))
	}
	end := len(j)
	if limit > 0 {
		end = min(end, start+limit)
	}
	return append([]core.JournalEntry(nil), j[start:end]...), dropped
}

// WebhookCursor implements Journal.
func (s *FileStore) WebhookCursor() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Cursor
}

// EnqueueWebhooks implements Journal. Items beyond MaxPending go to the
// dead-letter list with ErrOutboxFull.
func (s *FileStore) EnqueueWebhooks(ctx context.Context, from, to uint64, items []core.Webhook) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if to < from {
		return core.Errorf(core.CodeBadRequest, "webhook cursor cannot move back from %d to %d", from, to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Cursor != from {
		return core.Errorf(core.CodeConflict, "webhook cursor is %d, not %d: %w", s.st.Cursor, from, core.ErrConflict)
	}
	now := time.Now()
	rec := &record{Op: opEnqueue, From: from, To: to}
	seq, room := s.st.LastSeq, s.maxPending-len(s.st.Pending)
	seen := map[string]bool{}
	for _, w := range items {
		if w.ID == "" || s.pendingID[w.ID] || s.deadID[w.ID] || seen[w.ID] {
			continue
		}
		seen[w.ID] = true
		seq++
		w.Seq, w.Enqueued, w.Body = seq, now, jsonBody(w.Body)
		if room <= 0 {
			w.LastError, w.Died = ErrOutboxFull.Error(), now
			rec.Dead = append(rec.Dead, w)
			continue
		}
		room--
		rec.Items = append(rec.Items, w)
	}
	if len(rec.Dead) > 0 {
		s.log.Error("webhook outbox full; webhooks dead-lettered", "dead", len(rec.Dead), "max", s.maxPending)
	}
	return s.commit(rec)
}

// PendingWebhooks implements Outbox.
func (s *FileStore) PendingWebhooks() []core.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]core.Webhook(nil), s.st.Pending...)
}

// DeadWebhooks returns the dead-letter list, oldest first.
func (s *FileStore) DeadWebhooks() []core.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]core.Webhook(nil), s.st.Dead...)
}

// SettleWebhooks implements Outbox. Ids no longer pending are ignored.
func (s *FileStore) SettleWebhooks(ctx context.Context, acked []string, dead []core.Webhook) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &record{Op: opSettle}
	for _, id := range acked {
		if s.pendingID[id] {
			rec.IDs = append(rec.IDs, id)
		}
	}
	for _, w := range dead {
		if s.pendingID[w.ID] {
			if w.Died.IsZero() {
				w.Died = time.Now()
			}
			rec.Dead = append(rec.Dead, w)
		}
	}
	if len(rec.IDs)+len(rec.Dead) == 0 {
		return nil
	}
	return s.commit(rec)
}

func hostMatch(w core.Webhook, host string) bool {
	return host == "" || strings.EqualFold(w.Host, host)
}

// ClearWebhooks removes the pending webhooks (or, with dead, the dead
// ones) of receiver host ("" for all) and returns how many.
func (s *FileStore) ClearWebhooks(ctx context.Context, host string, dead bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.st.Pending
	if dead {
		list = s.st.Dead
	}
	rec := &record{Op: opClear, Flag: dead}
	for _, w := range list {
		if hostMatch(w, host) {
			rec.IDs = append(rec.IDs, w.ID)
		}
	}
	if len(rec.IDs) == 0 {
		return 0, nil
	}
	if err := s.commit(rec); err != nil {
		return 0, err
	}
	return len(rec.IDs), nil
}

// RetryWebhooks moves the dead webhooks of receiver host ("" for all) back
// to the outbox, as new (new Seq, Enqueued now, no attempts), as far as
// the outbox has room, and returns how many.
func (s *FileStore) RetryWebhooks(ctx context.Context, host string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	rec := &record{Op: opRetry}
	seq, room := s.st.LastSeq, s.maxPending-len(s.st.Pending)
	for _, w := range s.st.Dead {
		if room <= 0 {
			break
		}
		if !hostMatch(w, host) || s.pendingID[w.ID] {
			continue
		}
		seq++
		room--
		w.Seq, w.Enqueued, w.Attempts, w.LastError, w.Died = seq, now, 0, "", time.Time{}
		rec.Items = append(rec.Items, w)
	}
	if len(rec.Items) == 0 {
		return 0, nil
	}
	if err := s.commit(rec); err != nil {
		return 0, err
	}
	return len(rec.Items), nil
}

// SigningKeys implements Outbox.
func (s *FileStore) SigningKeys() []core.SigningKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]core.SigningKey(nil), s.st.Keys...)
}

// EnsureSigningKey returns the active signing key, creating one the first
// time.
func (s *FileStore) EnsureSigningKey(ctx context.Context) (core.SigningKey, error) {
	if err := ctx.Err(); err != nil {
		return core.SigningKey{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.st.Keys) > 0 {
		return s.st.Keys[0], nil
	}
	k, err := NewSigningKey()
	if err != nil {
		return core.SigningKey{}, err
	}
	if err := s.commit(&record{Op: opKeys, Keys: []core.SigningKey{k}}); err != nil {
		return core.SigningKey{}, err
	}
	return k, nil
}

// RotateSigningKey makes a new active key and keeps the previous active
// one (webhooks are signed with both) until RetireSigningKeys; older keys
// go. It returns the new key.
func (s *FileStore) RotateSigningKey(ctx context.Context) (core.SigningKey, error) {
	if err := ctx.Err(); err != nil {
		return core.SigningKey{}, err
	}
	k, err := NewSigningKey()
	if err != nil {
		return core.SigningKey{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []core.SigningKey{k}
	if len(s.st.Keys) > 0 {
		prev := s.st.Keys[0]
		prev.Active = false
		keys = append(keys, prev)
	}
	if err := s.commit(&record{Op: opKeys, Keys: keys}); err != nil {
		return core.SigningKey{}, err
	}
	return k, nil
}

// RetireSigningKeys drops every key but the active one and returns how
// many went.
func (s *FileStore) RetireSigningKeys(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.st.Keys) <= 1 {
		return 0, nil
	}
	n := len(s.st.Keys) - 1
	if err := s.commit(&record{Op: opKeys, Keys: s.st.Keys[:1:1]}); err != nil {
		return 0, err
	}
	return n, nil
}

// NewSigningKey returns a new active Ed25519 signing key whose ID is a
// fingerprint of its public half.
func NewSigningKey() (core.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return core.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	return core.SigningKey{ID: hex.EncodeToString(sum[:8]), Private: priv, Created: time.Now().UTC().Round(0), Active: true}, nil
}
