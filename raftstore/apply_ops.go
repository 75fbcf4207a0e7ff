package raftstore

import (
	"slices"
	"time"

	"github.com/parleyhq/parley/core"
)

// Handlers of the webhook outbox, signing key, API key and idempotency
// commands. The rules of apply.go hold: no I/O, no clock but the header's,
// no randomness, maps walked in order.

// applyOp dispatches the commands of command_ops.go; ok is false for any
// other command.
func (s *state) applyOp(cmd Command) (res Result, ok bool) {
	switch c := cmd.(type) {
	case *EnqueueWebhooks:
		return s.enqueueWebhooks(c), true
	case *SettleWebhooks:
		return s.settleWebhooks(c), true
	case *ClearWebhooks:
		return s.clearWebhooks(c), true
	case *RetryWebhooks:
		return s.retryWebhooks(c), true
	case *RotateSigningKey:
		return s.rotateSigningKey(c), true
	case *RetireSigningKeys:
		return s.retireSigningKeys(), true
	case *PutAPIKey:
		return s.putAPIKey(c), true
	case *DeleteAPIKey:
		return s.deleteAPIKey(c), true
	case *ReserveIdempotency:
		return s.reserveIdempotency(c), true
	case *CompleteIdempotency:
		return s.completeIdempotency(c), true
	case *ForgetIdempotency:
		return s.forgetIdempotency(c), true
	}
	return Result{}, false
}

func (s *state) enqueueWebhooks(c *EnqueueWebhooks) Result {
	if c.From != s.Outbox.Cursor {
		return failed(ErrConflict, "webhook cursor is at %d, not %d", s.Outbox.Cursor, c.From)
	}
	if c.To > s.Journal.Seq {
		return failed(ErrBadCommand, "webhook cursor %d beyond the journal's end %d", c.To, s.Journal.Seq)
	}
	s.Outbox.Cursor = c.To
	if i := s.journalAfter(c.To); i > 0 {
		s.Journal.Entries = slices.Clone(s.Journal.Entries[i:])
	}
	have := s.webhookIDs()
	for _, w := range c.Items {
		if have[w.ID] {
			continue
		}
		have[w.ID] = true
		s.Outbox.Seq++
		w.Seq, w.Enqueued = s.Outbox.Seq, c.Time()
		w.Attempts, w.LastError, w.Died = 0, "", time.Time{}
		if len(s.Outbox.Items) >= maxOutbox {
			w.LastError, w.Died = "outbox full", c.Time()
			s.Outbox.Dead = append(s.Outbox.Dead, w)
			continue
		}
		s.Outbox.Items = append(s.Outbox.Items, w)
	}
	s.trimDead()
	return Result{}
}

// journalAfter returns the position of the first journal entry with a
// sequence above seq.
func (s *state) journalAfter(seq uint64) int {
	i, _ := slices.BinarySearchFunc(s.Journal.Entries, seq+1, func(e PresenceEntry, t uint64) int {
		switch {
		case e.Seq < t:
			return -1
		case e.Seq > t:
			return 1
		}
		return 0
	})
	return i
}

// journalPage returns up to limit (all when limit <= 0) journal entries
// with a sequence above after, and how many entries above after are gone
// from the journal.
func (s *state) journalPage(after uint64, limit int) (entries []core.JournalEntry, gone uint64) {
	rest := s.Journal.Entries[s.journalAfter(after):]
	next := s.Journal.Seq + 1 // the first sequence still held, if any
	if len(rest) > 0 {
		next = rest[0].Seq
	}
	if next > after+1 {
		gone = next - after - 1
	}
	if limit > 0 && len(rest) > limit {
		rest = rest[:limit]
	}
	entries = make([]core.JournalEntry, len(rest))
	for i, e := range rest {
		entries[i] = core.JournalEntry{Seq: e.Seq, Event: e.Event()}
	}
	return entries, gone
}

// webhookIDs returns the ids of the pending and dead webhooks.
func (s *state) webhookIDs() map[string]bool {
	have := make(map[string]bool, len(s.Outbox.Items)+len(s.Outbox.Dead))
	for _, w := range s.Outbox.Items {
		have[w.ID] = true
	}
	for _, w := range s.Outbox.Dead {
		have[w.ID] = true
	}
	return have
}

// trimDead evicts the oldest dead letters beyond maxDead.
func (s *state) trimDead() {
	if over := len(s.Outbox.Dead) - maxDead; over > 0 {
		s.Outbox.Evicted += uint64(over)
		s.Outbox.Dead = slices.Clone(s.Outbox.Dead[over:])
	}
}

func (s *state) settleWebhooks(c *SettleWebhooks) Result {
	pos := make(map[string]int, len(s.Outbox.Items))
	for i, w := range s.Outbox.Items {
		pos[w.ID] = i
	}
	gone := map[string]bool{}
	for _, id := range c.Acked {
		if _, ok := pos[id]; ok {
			gone[id] = true
		}
	}
	for _, d := range c.Dead {
		i, ok := pos[d.ID]
		if !ok || gone[d.ID] {
			continue
		}
		gone[d.ID] = true
		w := s.Outbox.Items[i]
		w.Attempts, w.LastError, w.Died = d.Attempts, d.LastError, c.Time()
		s.Outbox.Dead = append(s.Outbox.Dead, w)
	}
	if len(gone) > 0 {
		s.Outbox.Items = slices.DeleteFunc(slices.Clone(s.Outbox.Items), func(w core.Webhook) bool { return gone[w.ID] })
	}
	s.trimDead()
	return Result{Count: len(gone)}
}

func (s *state) clearWebhooks(c *ClearWebhooks) Result {
	match := func(w core.Webhook) bool { return c.Host == "" || w.Host == c.Host }
	list := &s.Outbox.Items
	if c.Dead {
		list = &s.Outbox.Dead
	}
	before := len(*list)
	*list = slices.DeleteFunc(slices.Clone(*list), match)
	return Result{Count: before - len(*list)}
}

func (s *state) retryWebhooks(c *RetryWebhooks) Result {
	var stay []core.Webhook
	n := 0
	for _, w := range s.Outbox.Dead {
		if (c.Host != "" && w.Host != c.Host) || len(s.Outbox.Items) >= maxOutbox {
			stay = append(stay, w)
			continue
		}
		s.Outbox.Seq++
		w.Seq, w.Enqueued = s.Outbox.Seq, c.Time()
		w.Attempts, w.LastError, w.Died = 0, "", time.Time{}
		s.Outbox.Items = append(s.Outbox.Items, w)
		n++
	}
	if n > 0 {
		s.Outbox.Dead = stay
	}
	return Result{Count: n}
}

// rotateSigningKey makes c.Key active and keeps the previously active key
// (inactive); any other key is dropped.
func (s *state) rotateSigningKey(c *RotateSigningKey) Result {
	if c.IfNone && len(s.SigningKeys) > 0 {
		return Result{}
	}
	if slices.ContainsFunc(s.SigningKeys, func(k core.SigningKey) bool { return k.ID == c.Key.ID }) {
		return Result{}
	}
	k := c.Key
	k.Active, k.Created = true, c.Time()
	keys := make([]core.SigningKey, 0, maxSigningKeys)
	keys = append(keys, k)
	if len(s.SigningKeys) > 0 {
		prev := s.SigningKeys[0] // active first
		prev.Active = false
		keys = append(keys, prev)
	}
	s.SigningKeys = keys
	return Result{Created: true}
}

func (s *state) retireSigningKeys() Result {
	var keep []core.SigningKey
	for _, k := range s.SigningKeys {
		if k.Active {
			keep = append(keep, k)
		}
	}
	n := len(s.SigningKeys) - len(keep)
	if n > 0 {
		s.SigningKeys = keep
	}
	return Result{Count: n}
}

func (s *state) putAPIKey(c *PutAPIKey) Result {
	if _, ok := s.APIKeys[c.Key.ID]; ok {
		return failed(ErrConflict, "api key %s exists", c.Key.ID)
	}
	k := c.Key
	if k.Created.IsZero() {
		k.Created = c.Time()
	}
	s.APIKeys[k.ID] = k
	return Result{Created: true}
}

func (s *state) deleteAPIKey(c *DeleteAPIKey) Result {
	if _, ok := s.APIKeys[c.ID]; !ok {
		return failed(ErrNotFound, "api key %s", c.ID)
	}
	delete(s.APIKeys, c.ID)
	return Result{Count: 1}
}

func (s *state) reserveIdempotency(c *ReserveIdempotency) Result {
	s.expireIdempotency(c.Time())
	if _, ok := s.Idempotency.Records[c.Record.Key]; ok {
		return Result{}
	}
	r := c.Record
	r.Done, r.Status, r.Result, r.Expires = false, 0, nil, c.Time().Add(c.TTL)
	s.Idempotency.Records[r.Key] = r
	s.Idempotency.Order = append(s.Idempotency.Order, r.Key)
	s.boundIdempotency()
	return Result{Created: true}
}

func (s *state) completeIdempotency(c *CompleteIdempotency) Result {
	s.expireIdempotency(c.Time())
	r, ok := s.Idempotency.Records[c.Record.Key]
	if !ok {
		return failed(ErrNotFound, "idempotency key %s has no live record", c.Record.Key)
	}
	s.Idempotency.Bytes += len(c.Record.Result) - len(r.Result)
	r.Done, r.Status, r.Result = true, c.Record.Status, c.Record.Result
	s.Idempotency.Records[r.Key] = r
	s.boundIdempotency()
	return Result{}
}

func (s *state) forgetIdempotency(c *ForgetIdempotency) Result {
	s.expireIdempotency(c.Time())
	if !s.dropIdempotency(func(k string) bool { return k == c.Key }) {
		return Result{}
	}
	return Result{Count: 1}
}

// expireIdempotency drops the records expired at now.
func (s *state) expireIdempotency(now time.Time) {
	recs := s.Idempotency.Records
	s.dropIdempotency(func(k string) bool { return !recs[k].Expires.After(now) })
}

// boundIdempotency evicts the oldest records beyond the table's bounds.
func (s *state) boundIdempotency() {
	t := &s.Idempotency
	n := 0
	for len(t.Order)-n > maxIdempotency || (t.Bytes > maxIdempotencySize && n < len(t.Order)) {
		t.Bytes -= len(t.Records[t.Order[n]].Result)
		delete(t.Records, t.Order[n])
		n++
	}
	if n > 0 {
		t.Order = slices.Clone(t.Order[n:])
	}
}

// dropIdempotency removes the records whose keys match; it reports
// whether any did.
func (s *state) dropIdempotency(match func(key string) bool) bool {
	t := &s.Idempotency
	before := len(t.Order)
	t.Order = slices.DeleteFunc(slices.Clone(t.Order), func(k string) bool {
		if !match(k) {
			return false
		}
		t.Bytes -= len(t.Records[k].Result)
		delete(t.Records, k)
		return true
	})
	return len(t.Order) != before
}
