package raftstore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/parleyhq/parley/core"
)

// The Store's side of the webhook pipeline (issue 5) and of the server
// API (issue 7). Reads answer from the local replica; writes are one
// command each and work on any node. The values reads return share their
// byte slices and maps (webhook bodies and headers, private keys, results)
// with the replica: callers must not modify them.

// PresenceJournal returns, in order, up to limit (all when limit <= 0)
// committed presence entries with a sequence above after, and how many
// entries with a sequence above after are no longer in the journal. Past
// the webhook cursor those are entries the journal evicted before the
// pipeline processed them (it keeps 100000 past the cursor); at or below
// the cursor, entries are trimmed once processed. The pipeline passes
// WebhookCursor as after, so dropped counts only losses, and it can step
// its cursor over them.
func (s *Store) PresenceJournal(after uint64, limit int) (entries []core.JournalEntry, dropped uint64) {
	s.fsm.read(func(st *state) { entries, dropped = st.journalPage(after, limit) })
	return entries, dropped
}

// WebhookCursor returns the last journal sequence the webhook pipeline
// has processed (EnqueueWebhooks moves it).
func (s *Store) WebhookCursor() uint64 {
	var c uint64
	s.fsm.read(func(st *state) { c = st.Outbox.Cursor })
	return c
}

// EnqueueWebhooks moves the webhook cursor from from to to and appends
// items to the outbox, as one command. It is a compare-and-set: if the
// cursor is not at from (another leader moved it), it fails with an error
// matching core.ErrConflict (ErrConflict) and enqueues nothing. to may not
// pass the journal's last sequence. Items get their Seq and Enqueued
// time from the store; an item whose ID is already pending or dead is
// ignored. Beyond 100000 pending webhooks, new items go to the dead-letter
// list with LastError "outbox full". Journal entries up to to are trimmed.
func (s *Store) EnqueueWebhooks(ctx context.Context, from, to uint64, items []core.Webhook) error {
	_, err := s.Apply(ctx, &EnqueueWebhooks{From: from, To: to, Items: items})
	return err
}

// PendingWebhooks returns the pending webhooks in Seq order.
func (s *Store) PendingWebhooks() []core.Webhook {
	var out []core.Webhook
	s.fsm.read(func(st *state) { out = slices.Clone(st.Outbox.Items) })
	return out
}

// DeadWebhooks returns the dead-letter list in the order the webhooks
// died. It keeps the last 10000; Metrics counts the evicted ones.
func (s *Store) DeadWebhooks() []core.Webhook {
	var out []core.Webhook
	s.fsm.read(func(st *state) { out = slices.Clone(st.Outbox.Dead) })
	return out
}

// SettleWebhooks records delivery outcomes as one command: the acked ids
// leave the pending list, and each of dead (matched by ID among the
// pending webhooks; only ID, Attempts and LastError are read, LastError
// at most 4096 bytes) moves to the dead-letter list, stamped Died.
// Unknown ids are ignored.
func (s *Store) SettleWebhooks(ctx context.Context, acked []string, dead []core.Webhook) error {
	if len(acked) == 0 && len(dead) == 0 {
		return nil
	}
	slim := make([]core.Webhook, len(dead))
	for i, d := range dead {
		slim[i] = core.Webhook{ID: d.ID, Attempts: d.Attempts, LastError: d.LastError}
	}
	_, err := s.Apply(ctx, &SettleWebhooks{Acked: acked, Dead: slim})
	return err
}

// ClearWebhooks removes the pending webhooks (dead false) or the dead
// letters (dead true) whose Host is host, or all of them when host is
// empty, and returns how many it removed.
func (s *Store) ClearWebhooks(ctx context.Context, host string, dead bool) (int, error) {
	res, err := s.Apply(ctx, &ClearWebhooks{Host: host, Dead: dead})
	return res.Count, err
}

// RetryWebhooks moves the dead letters of host (all when empty) back to
// the end of the pending list, as fresh webhooks (new Seq and Enqueued,
// no attempts), and returns how many it moved. Beyond 100000 pending, the
// rest stay dead.
func (s *Store) RetryWebhooks(ctx context.Context, host string) (int, error) {
	res, err := s.Apply(ctx, &RetryWebhooks{Host: host})
	return res.Count, err
}

// SigningKeys returns the cluster's webhook signing keys, the active one
// first; during a rotation the previous key follows it. The private keys
// are the cluster's secret: never log them.
func (s *Store) SigningKeys() []core.SigningKey {
	var out []core.SigningKey
	s.fsm.read(func(st *state) { out = slices.Clone(st.SigningKeys) })
	return out
}

// RotateSigningKey generates a new Ed25519 key on this node and makes it
// the cluster's active signing key. The previous active key stays,
// inactive, so that receivers can fetch both while they switch; an older
// one is dropped (two keys at most). RetireSigningKeys ends the rotation.
func (s *Store) RotateSigningKey(ctx context.Context) (core.SigningKey, error) {
	cmd, err := newKeyCommand(false)
	if err != nil {
		return core.SigningKey{}, err
	}
	if _, err := s.Apply(ctx, cmd); err != nil {
		return core.SigningKey{}, err
	}
	k := cmd.Key
	k.Active, k.Created = true, cmd.Time()
	return k, nil
}

// RetireSigningKeys drops the inactive signing keys and returns how many.
func (s *Store) RetireSigningKeys(ctx context.Context) (int, error) {
	res, err := s.Apply(ctx, &RetireSigningKeys{})
	return res.Count, err
}

// EnsureSigningKey returns the cluster's active signing key, creating one
// if the cluster has none. Concurrent calls agree: the creating command
// is ignored when a key exists by the time it applies. The leader calls
// it when it takes office.
func (s *Store) EnsureSigningKey(ctx context.Context) (core.SigningKey, error) {
	if k, ok := s.activeKey(); ok {
		return k, nil
	}
	cmd, err := newKeyCommand(true)
	if err != nil {
		return core.SigningKey{}, err
	}
	res, err := s.Apply(ctx, cmd)
	if err != nil {
		return core.SigningKey{}, err
	}
	if err := s.waitLocal(ctx, res.Index); err != nil {
		return core.SigningKey{}, err
	}
	k, ok := s.activeKey()
	if !ok {
		return core.SigningKey{}, public(fmt.Errorf("%w: no active signing key after creating one", ErrConflict))
	}
	return k, nil
}

func (s *Store) activeKey() (core.SigningKey, bool) {
	var k core.SigningKey
	var ok bool
	s.fsm.read(func(st *state) {
		if len(st.SigningKeys) > 0 && st.SigningKeys[0].Active {
			k, ok = st.SigningKeys[0], true
		}
	})
	return k, ok
}

// newKeyCommand generates a key (outside the state machine, which draws
// no randomness) and the command that installs it.
func newKeyCommand(ifNone bool) (*RotateSigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, public(fmt.Errorf("raftstore: generate signing key: %w", err))
	}
	cmd := &RotateSigningKey{Key: core.SigningKey{ID: signingKeyID(priv.Public().(ed25519.PublicKey)), Private: priv}, IfNone: ifNone}
	cmd.At = time.Now().UnixNano()
	return cmd, nil
}

// waitLocal waits, within the apply timeout, until the local replica has
// applied index idx.
func (s *Store) waitLocal(ctx context.Context, idx uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	return public(s.fsm.waitApplied(ctx, idx))
}

// PutAPIKey adds a server API key (Created defaults to now). An existing
// id fails with an error matching core.ErrConflict.
func (s *Store) PutAPIKey(ctx context.Context, k core.APIKey) error {
	_, err := s.Apply(ctx, &PutAPIKey{Key: k})
	return err
}

// DeleteAPIKey removes a server API key; an unknown id fails with an error
// matching core.ErrNotFound.
func (s *Store) DeleteAPIKey(ctx context.Context, id string) error {
	_, err := s.Apply(ctx, &DeleteAPIKey{ID: id})
	return err
}

// APIKeys returns the server API keys ordered by id.
func (s *Store) APIKeys() []core.APIKey {
	var out []core.APIKey
	s.fsm.read(func(st *state) {
		for _, id := range sortedKeys(st.APIKeys) {
			out = append(out, st.APIKeys[id])
		}
	})
	return out
}

// APIKey returns the server API key id.
func (s *Store) APIKey(id string) (core.APIKey, bool) {
	var k core.APIKey
	var ok bool
	s.fsm.read(func(st *state) { k, ok = st.APIKeys[id] })
	return k, ok
}

// ReserveIdempotency is a compare-and-set on rec.Key: if a record with
// that key is live (not expired at the command's time), it returns that
// record and false; otherwise it stores rec as not done, expiring ttl
// from now, and returns it and true. The table keeps at most 10000
// records and 32 MiB of results, evicting the oldest.
func (s *Store) ReserveIdempotency(ctx context.Context, rec core.IdempotencyRecord, ttl time.Duration) (core.IdempotencyRecord, bool, error) {
	cmd := &ReserveIdempotency{Record: rec, TTL: ttl}
	cmd.At = time.Now().UnixNano()
	res, err := s.Apply(ctx, cmd)
	if err != nil {
		return core.IdempotencyRecord{}, false, err
	}
	if res.Created {
		rec.Done, rec.Status, rec.Result, rec.Expires = false, 0, nil, cmd.Time().Add(ttl)
		return rec, true, nil
	}
	if err := s.waitLocal(ctx, res.Index); err != nil {
		return core.IdempotencyRecord{}, false, err
	}
	var cur core.IdempotencyRecord
	var ok bool
	s.fsm.read(func(st *state) { cur, ok = st.Idempotency.Records[rec.Key] })
	if !ok {
		return core.IdempotencyRecord{}, false, public(fmt.Errorf("%w: idempotency key %s was dropped concurrently", ErrConflict, rec.Key))
	}
	return cur, false, nil
}

// CompleteIdempotency stores rec's Status and Result for its key and marks
// it done; a key without a live record fails with an error matching
// core.ErrNotFound. Results are limited to 1 MiB.
func (s *Store) CompleteIdempotency(ctx context.Context, rec core.IdempotencyRecord) error {
	_, err := s.Apply(ctx, &CompleteIdempotency{Record: rec})
	return err
}

// ForgetIdempotency drops the record of key, if any (for a request whose
// first attempt failed before it took effect).
func (s *Store) ForgetIdempotency(ctx context.Context, key string) error {
	_, err := s.Apply(ctx, &ForgetIdempotency{Key: key})
	return err
}

// Idempotency returns the live record of key in the local replica.
// Records past their Expires (by this node's clock) are not returned.
func (s *Store) Idempotency(key string) (core.IdempotencyRecord, bool) {
	var r core.IdempotencyRecord
	var ok bool
	s.fsm.read(func(st *state) { r, ok = st.Idempotency.Records[key] })
	if ok && !r.Expires.After(time.Now()) {
		return core.IdempotencyRecord{}, false
	}
	return r, ok
}

// oldestPending returns the Enqueued time of the oldest pending webhook.
func oldestPending(items []core.Webhook) time.Time {
	var t time.Time
	for _, w := range items {
		if t.IsZero() || w.Enqueued.Before(t) {
			t = w.Enqueued
		}
	}
	return t
}
