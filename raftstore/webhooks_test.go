package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// lastSeq returns the journal's last sequence on nd.
func lastSeq(nd *testNode) uint64 {
	var seq uint64
	nd.s.fsm.read(func(st *state) { seq = st.Journal.Seq })
	return seq
}

func TestOutboxSurvivesLeaderLoss(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	l := c.leader(15 * time.Second)
	f := c.followers()[0]
	if _, err := f.s.ClaimRoom(ctx, "r", ""); err != nil {
		t.Fatal(err)
	}
	join := core.PresenceChange{PresenceEvent: core.PresenceEvent{Kind: core.PresenceJoined, Room: "r",
		Identity: "alice", ParticipantID: "PA_1", At: time.Now()}}
	if err := f.s.RecordPresence(ctx, join); err != nil {
		t.Fatal(err)
	}
	// The leader's pipeline: read the journal, enqueue, settle.
	entries, dropped := l.s.PresenceJournal(l.s.WebhookCursor(), 0)
	eventually(t, 10*time.Second, "journal on the leader", func() bool {
		entries, dropped = l.s.PresenceJournal(l.s.WebhookCursor(), 0)
		return len(entries) == 2
	})
	if dropped != 0 || entries[0].Seq != 1 || entries[0].Event.Kind != core.PresenceRoomStarted ||
		entries[1].Event.Kind != core.PresenceJoined || entries[1].Event.ID == "" {
		t.Fatalf("journal: %+v (dropped %d)", entries, dropped)
	}
	if err := l.s.EnqueueWebhooks(ctx, 0, entries[1].Seq, webhooks("a.test", "W1", "W2", "W3", "W4")); err != nil {
		t.Fatal(err)
	}
	if err := l.s.SettleWebhooks(ctx, []string{"W1"}, []core.Webhook{{ID: "W2", Attempts: 2, LastError: "400 Bad Request"}}); err != nil {
		t.Fatal(err)
	}
	// A step from a stale cursor, through a follower, changes nothing.
	err := f.s.EnqueueWebhooks(ctx, 0, 2, webhooks("a.test", "W9"))
	if !errors.Is(err, core.ErrConflict) || !errors.Is(err, ErrConflict) {
		t.Fatalf("stale cursor: %v", err)
	}
	pending, dead, cursor := l.s.PendingWebhooks(), l.s.DeadWebhooks(), l.s.WebhookCursor()
	if ids(pending) != "W3,W4" || ids(dead) != "W2" || cursor != 2 || dead[0].LastError != "400 Bad Request" {
		t.Fatalf("before the leader stops: pending %s, dead %s, cursor %d", ids(pending), ids(dead), cursor)
	}
	if m := l.s.Metrics(); m.WebhooksPending != 2 || m.WebhooksDead != 1 || m.JournalBacklog != 0 || !m.Leader ||
		m.ApplyLatency.Count == 0 || m.OldestPending.IsZero() {
		t.Fatalf("leader metrics: %+v", m)
	}
	c.stop(l)
	nl := c.leader(15 * time.Second)
	eventually(t, 15*time.Second, "the new leader holds the same outbox", func() bool {
		return jsonOf(nl.s.PendingWebhooks()) == jsonOf(pending) && jsonOf(nl.s.DeadWebhooks()) == jsonOf(dead) &&
			nl.s.WebhookCursor() == cursor
	})
	// The new leader goes on from the cursor; what it re-enqueues is
	// ignored, what is new is appended.
	ahead := lastSeq(nl)
	if err := nl.s.EnqueueWebhooks(ctx, cursor, ahead, webhooks("a.test", "W3", "W5")); err != nil {
		t.Fatal(err)
	}
	if got := ids(nl.s.PendingWebhooks()); got != "W3,W4,W5" {
		t.Fatalf("pending after the new leader's step: %s", got)
	}
	if n, err := nl.s.RetryWebhooks(ctx, "a.test"); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	if n, err := nl.s.ClearWebhooks(ctx, "", false); err != nil || n != 4 {
		t.Fatalf("clear: %d, %v", n, err)
	}
	c.converged(15 * time.Second)
}

func TestSigningKeyCreatedOnceAndRotated(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	var k0 core.SigningKey
	eventually(t, 15*time.Second, "one signing key on every node", func() bool {
		var ref string
		for _, nd := range c.running() {
			ks := nd.s.SigningKeys()
			if len(ks) != 1 || !ks[0].Active || (ref != "" && jsonOf(ks) != ref) {
				return false
			}
			ref, k0 = jsonOf(ks), ks[0]
		}
		return true
	})
	if k0.ID != signingKeyID(k0.Public()) || k0.Created.IsZero() {
		t.Fatalf("key: id %s, created %v", k0.ID, k0.Created)
	}
	// Ensuring again, anywhere, returns the same key.
	f := c.followers()[0]
	if k, err := f.s.EnsureSigningKey(ctx); err != nil || k.ID != k0.ID {
		t.Fatalf("ensure on a follower: %s, %v", k.ID, err)
	}
	// A new leader keeps the key.
	old := c.leader(15 * time.Second)
	c.stop(old)
	nl := c.leader(15 * time.Second)
	if k, err := nl.s.EnsureSigningKey(ctx); err != nil || k.ID != k0.ID {
		t.Fatalf("ensure on the new leader: %s, %v", k.ID, err)
	}
	// Rotation through whichever node: both keys served, new one first.
	var other *testNode
	for _, nd := range c.running() {
		if nd != nl {
			other = nd
		}
	}
	k1, err := other.s.RotateSigningKey(ctx)
	if err != nil || k1.ID == k0.ID || !k1.Active {
		t.Fatalf("rotate: %+v, %v", k1.ID, err)
	}
	want := k1.ID + "*," + k0.ID
	eventually(t, 15*time.Second, "rotation replicated", func() bool {
		for _, nd := range c.running() {
			if keyIDs(nd.s.SigningKeys()) != want {
				return false
			}
		}
		return true
	})
	if ks := nl.s.SigningKeys(); !bytes.Equal(ks[0].Private, k1.Private) || !ks[0].Created.Equal(k1.Created) {
		t.Fatal("the replicated key differs from the one returned")
	}
	if n, err := nl.s.RetireSigningKeys(ctx); err != nil || n != 1 {
		t.Fatalf("retire: %d, %v", n, err)
	}
	eventually(t, 15*time.Second, "retirement replicated", func() bool {
		for _, nd := range c.running() {
			if keyIDs(nd.s.SigningKeys()) != k1.ID+"*" {
				return false
			}
		}
		return true
	})
}

func TestAPIKeysAndIdempotencyInCluster(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 30*time.Second)
	f := c.followers()[0]
	if err := f.s.PutAPIKey(ctx, core.APIKey{ID: "AKb", Name: "b", Secret: "sb"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.PutAPIKey(ctx, core.APIKey{ID: "AKa", Name: "a", Secret: "sa"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.PutAPIKey(ctx, core.APIKey{ID: "AKa", Secret: "x"}); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := f.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if ks := f.s.APIKeys(); len(ks) != 2 || ks[0].ID != "AKa" || ks[1].ID != "AKb" || ks[0].Created.IsZero() {
		t.Fatalf("keys: %+v", ks)
	}
	if k, ok := f.s.APIKey("AKb"); !ok || k.Secret != "sb" {
		t.Fatalf("key AKb: %+v %v", k, ok)
	}
	if err := f.s.DeleteAPIKey(ctx, "AKb"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteAPIKey(ctx, "AKb"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// Two nodes race for one idempotency key: exactly one reserves it.
	rec := core.IdempotencyRecord{Key: "AKa:op1", Hash: "h"}
	type answer struct {
		rec     core.IdempotencyRecord
		created bool
		err     error
	}
	answers := make(chan answer, 3)
	for _, nd := range c.nodes {
		go func() {
			r := rec
			r.Owner = nd.id
			got, created, err := nd.s.ReserveIdempotency(ctx, r, time.Minute)
			answers <- answer{got, created, err}
		}()
	}
	var owner string
	for range 3 {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.created {
			if owner != "" {
				t.Fatal("two reservations of one key")
			}
			owner = a.rec.Owner
		}
		if a.rec.Done || a.rec.Key != rec.Key || a.rec.Expires.IsZero() {
			t.Fatalf("answer: %+v", a.rec)
		}
	}
	if owner == "" {
		t.Fatal("nobody reserved the key")
	}
	if err := c.nodes[0].s.CompleteIdempotency(ctx, core.IdempotencyRecord{Key: rec.Key, Status: 200, Result: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	got, created, err := c.nodes[2].s.ReserveIdempotency(ctx, rec, time.Minute)
	if err != nil || created || !got.Done || string(got.Result) != "ok" || got.Owner != owner {
		t.Fatalf("reserve after completion: %+v %v %v", got, created, err)
	}
	if err := f.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r, ok := f.s.Idempotency(rec.Key); !ok || r.Status != 200 {
		t.Fatalf("local read: %+v %v", r, ok)
	}
	if err := f.s.ForgetIdempotency(ctx, rec.Key); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CompleteIdempotency(ctx, core.IdempotencyRecord{Key: rec.Key}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("complete after forget: %v", err)
	}
	// A record past its expiry is not returned.
	if _, _, err := f.s.ReserveIdempotency(ctx, core.IdempotencyRecord{Key: "AKa:short"}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the short record expires", func() bool {
		_, ok := f.s.Idempotency("AKa:short")
		return !ok
	})
}

// webhookState renders what the webhook pipeline and the server API keep.
func webhookState(s *Store) string {
	r, _ := s.Idempotency("AK1:x")
	return jsonOf([]any{s.WebhookCursor(), s.PendingWebhooks(), s.DeadWebhooks(), s.SigningKeys(), s.APIKeys(), r})
}

// TestWebhookStateInSnapshots: the outbox, dead letters, keys, API keys
// and idempotency records survive a node's own snapshot and restart, and
// reach a follower that lagged behind the leader's compacted log.
func TestWebhookStateInSnapshots(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 8
		cfg.SnapshotThreshold = 1 << 20 // only explicit snapshots
	})
	ctx := ctxT(t, 60*time.Second)
	l := c.leader(15 * time.Second)
	g := c.followers()[0]
	if _, err := l.s.ClaimRoom(ctx, "r", ""); err != nil {
		t.Fatal(err)
	}
	if err := l.s.EnqueueWebhooks(ctx, 0, 1, webhooks("a.test", "W1", "W2", "W3")); err != nil {
		t.Fatal(err)
	}
	if err := l.s.SettleWebhooks(ctx, nil, []core.Webhook{{ID: "W1", Attempts: 1, LastError: "410"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.s.PutAPIKey(ctx, core.APIKey{ID: "AK1", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.s.ReserveIdempotency(ctx, core.IdempotencyRecord{Key: "AK1:x", Owner: l.id}, time.Hour); err != nil {
		t.Fatal(err)
	}
	c.converged(15 * time.Second)
	// The follower's own snapshot, then a restart from it.
	if err := g.s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.stop(g)
	c.start(g)
	// NewRaft restored the snapshot before returning and replays no log
	// before it hears from a leader: what g holds now came from it.
	if idx, _ := strconv.ParseUint(g.s.raft.Stats()["last_snapshot_index"], 10, 64); idx == 0 || g.s.AppliedIndex() != idx {
		t.Fatalf("after restart: applied %d, snapshot %d", g.s.AppliedIndex(), idx)
	}
	if a, b := webhookState(g.s), webhookState(l.s); a != b {
		t.Fatalf("right after restart from the snapshot:\n%s\nwant\n%s", a, b)
	}
	c.waitReady(g)
	c.converged(15 * time.Second)
	// A lagging follower: it misses writes, the leader compacts its log,
	// and the follower gets the state as a snapshot.
	c.stop(g)
	for i := range 20 {
		if err := l.s.PutAPIKey(ctx, core.APIKey{ID: fmt.Sprintf("AKx%d", i), Secret: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.s.EnqueueWebhooks(ctx, 1, 1, webhooks("b.test", "W4")); err != nil {
		t.Fatal(err)
	}
	if err := l.s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.start(g)
	c.waitReady(g)
	c.converged(15 * time.Second)
	if a, b := webhookState(g.s), webhookState(l.s); a != b {
		t.Fatalf("lagging follower:\n%s\nwant\n%s", a, b)
	}
	if ids(g.s.PendingWebhooks()) != "W2,W3,W4" || ids(g.s.DeadWebhooks()) != "W1" || len(g.s.APIKeys()) != 21 ||
		jsonOf(g.s.SigningKeys()) != jsonOf(l.s.SigningKeys()) || g.s.WebhookCursor() != 1 {
		t.Fatalf("follower after snapshot install: pending %s, dead %s, %d api keys",
			ids(g.s.PendingWebhooks()), ids(g.s.DeadWebhooks()), len(g.s.APIKeys()))
	}
	if r, ok := g.s.Idempotency("AK1:x"); !ok || r.Owner != l.id {
		t.Fatalf("idempotency record after snapshot install: %+v %v", r, ok)
	}
}

// TestReleaseRoomCommitsQueuedLeavesFirst: leaves queued through
// Presence commit before the release, so the journal shows the real
// reason, then room_finished.
func TestReleaseRoomCommitsQueuedLeavesFirst(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 30*time.Second)
	f := c.followers()[0]
	claim, err := f.s.ClaimRoom(ctx, "r", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ev := core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Identity: "u", ParticipantID: fmt.Sprintf("PA_%02d", i), At: time.Now()}
		f.s.Presence(ctx, ev)
		ev.Kind, ev.TrackID, ev.TrackKind = core.PresenceTrackPublished, fmt.Sprintf("TR_%02d", i), core.KindAudio
		f.s.Presence(ctx, ev)
		ev.Kind, ev.Reason = core.PresenceLeft, "leave"
		f.s.Presence(ctx, ev)
	}
	f.s.Presence(ctx, core.PresenceEvent{Kind: core.PresenceRoomFinished, Room: "r", Reason: "closed"}) // ignored
	if err := f.s.ReleaseRoom(ctx, "r", claim.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	entries, _ := f.s.PresenceJournal(0, 0)
	if len(entries) != 2+20*4 {
		t.Fatalf("%d journal entries", len(entries))
	}
	last := entries[len(entries)-1].Event
	if last.Kind != core.PresenceRoomFinished || last.Reason != "released" || last.Room != "r" {
		t.Fatalf("last entry: %+v", last)
	}
	for i, e := range entries[1 : len(entries)-1] {
		if e.Seq != uint64(i+2) {
			t.Fatalf("gap at %d: %+v", i, e)
		}
		if (e.Event.Kind == core.PresenceLeft || e.Event.Kind == core.PresenceTrackUnpublished) && e.Event.Reason != "leave" {
			t.Fatalf("entry %d ended with %q, not the participant's own leave", e.Seq, e.Event.Reason)
		}
	}
	if got, _ := f.s.PresenceJournal(entries[9].Seq, 3); len(got) != 3 || got[0].Seq != entries[10].Seq {
		t.Fatalf("journal page: %+v", got)
	}
}

func TestApplyLatencyHistogram(t *testing.T) {
	var l latencies
	for _, d := range []time.Duration{100 * time.Microsecond, 700 * time.Microsecond, 3 * time.Millisecond, 7 * time.Second} {
		l.observe(d)
	}
	h := l.histogram()
	if h.Count != 4 || len(h.Counts) != len(h.Bounds) || h.Counts[0] != 1 || h.Counts[1] != 2 || h.Counts[3] != 3 ||
		h.Counts[len(h.Counts)-1] != 3 || h.Sum < 7 || h.Sum > 7.01 {
		t.Fatalf("histogram: %+v", h)
	}
}
