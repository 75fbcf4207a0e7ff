package webhook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/core"
)

func wh(id, host string) core.Webhook {
	return core.Webhook{ID: id, Host: host, URL: "http://" + host + "/x", Body: []byte(`{"a":1}`), Room: "r"}
}

// state returns what a store holds, for comparisons across reopen.
func state(s *FileStore) (j []core.JournalEntry, cursor uint64, pending, dead []core.Webhook, keys []core.SigningKey) {
	j, _ = s.PresenceJournal(0, 0)
	return j, s.WebhookCursor(), s.PendingWebhooks(), s.DeadWebhooks(), s.SigningKeys()
}

func sameState(t *testing.T, a, b *FileStore) {
	t.Helper()
	j1, c1, p1, d1, k1 := state(a)
	j2, c2, p2, d2, k2 := state(b)
	for i, pair := range [][2]any{{j1, j2}, {c1, c2}, {p1, p2}, {d1, d2}, {k1, k2}} {
		if !reflect.DeepEqual(norm(pair[0]), norm(pair[1])) {
			t.Fatalf("part %d differs after reopen:\n%+v\n%+v", i, pair[0], pair[1])
		}
	}
}

// norm drops monotonic clock readings so times compare by value.
func norm(v any) any {
	switch x := v.(type) {
	case []core.JournalEntry:
		out := make([]core.JournalEntry, len(x))
		for i, e := range x {
			e.Event.At = e.Event.At.Round(0).UTC()
			out[i] = e
		}
		return out
	case []core.Webhook:
		out := make([]core.Webhook, len(x))
		for i, w := range x {
			w.Enqueued, w.Died = w.Enqueued.Round(0).UTC(), w.Died.Round(0).UTC()
			out[i] = w
		}
		return out
	case []core.SigningKey:
		out := make([]core.SigningKey, len(x))
		for i, k := range x {
			k.Created = k.Created.Round(0).UTC()
			out[i] = k
		}
		return out
	}
	return v
}

func TestFileStoreSemantics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	defer func() { s.Close() }()

	e1, _ := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Identity: "a"})
	e2, _ := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceLeft, Room: "r", Identity: "a"})
	if e1.Seq != 1 || e2.Seq != 2 || e1.Event.ID == "" || e1.Event.ID == e2.Event.ID || e1.Event.At.IsZero() {
		t.Fatalf("entries %+v %+v", e1, e2)
	}
	if j, dropped := s.PresenceJournal(1, 10); len(j) != 1 || j[0].Seq != 2 || dropped != 0 {
		t.Fatalf("journal after 1: %+v %d", j, dropped)
	}

	// Compare-and-set cursor.
	err := s.EnqueueWebhooks(ctx, 1, 2, nil)
	if !errors.Is(err, core.ErrConflict) {
		t.Fatalf("enqueue from a stale cursor: %v", err)
	}
	if err := s.EnqueueWebhooks(ctx, 0, 2, []core.Webhook{wh("w1", "a.example"), wh("w2", "b.example"), wh("w1", "a.example")}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnqueueWebhooks(ctx, 0, 2, nil); !errors.Is(err, core.ErrConflict) {
		t.Fatalf("enqueue twice from the same cursor: %v", err)
	}
	if err := s.EnqueueWebhooks(ctx, 2, 2, []core.Webhook{wh("w1", "a.example"), wh("w3", "a.example")}); err != nil {
		t.Fatal(err)
	}
	p := s.PendingWebhooks()
	if len(p) != 3 || p[0].ID != "w1" || p[1].ID != "w2" || p[2].ID != "w3" || p[0].Seq != 1 || p[2].Seq != 3 || p[0].Enqueued.IsZero() {
		t.Fatalf("pending %+v", p)
	}
	if j, _ := s.PresenceJournal(s.WebhookCursor(), 10); len(j) != 0 || s.WebhookCursor() != 2 {
		t.Fatalf("journal after the cursor: %+v, cursor %d", j, s.WebhookCursor())
	}

	// Settle: w1 acked, w2 dead; unknown ids ignored.
	dead := wh("w2", "b.example")
	dead.Attempts, dead.LastError = 1, "HTTP 410"
	if err := s.SettleWebhooks(ctx, []string{"w1", "nope"}, []core.Webhook{dead}); err != nil {
		t.Fatal(err)
	}
	if p, d := s.PendingWebhooks(), s.DeadWebhooks(); len(p) != 1 || p[0].ID != "w3" || len(d) != 1 || d[0].ID != "w2" || d[0].LastError != "HTTP 410" || d[0].Died.IsZero() {
		t.Fatalf("after settle: pending %+v dead %+v", p, d)
	}

	// Retry and clear by host.
	if n, err := s.RetryWebhooks(ctx, "a.example"); n != 0 || err != nil {
		t.Fatalf("retry a.example: %d %v", n, err)
	}
	if n, err := s.RetryWebhooks(ctx, "B.example"); n != 1 || err != nil {
		t.Fatalf("retry b.example: %d %v", n, err)
	}
	p = s.PendingWebhooks()
	if len(p) != 2 || p[1].ID != "w2" || p[1].Seq != 4 || p[1].Attempts != 0 || p[1].LastError != "" || len(s.DeadWebhooks()) != 0 {
		t.Fatalf("after retry: %+v", p)
	}
	if n, err := s.ClearWebhooks(ctx, "a.example", false); n != 1 || err != nil {
		t.Fatalf("clear a.example: %d %v", n, err)
	}
	if p := s.PendingWebhooks(); len(p) != 1 || p[0].ID != "w2" {
		t.Fatalf("after clear: %+v", p)
	}

	// Keys: created once, rotated (two kept), retired.
	k1, err := s.EnsureSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.EnsureSigningKey(ctx); again.ID != k1.ID {
		t.Fatal("EnsureSigningKey made a second key")
	}
	k2, _ := s.RotateSigningKey(ctx)
	k3, _ := s.RotateSigningKey(ctx)
	keys := s.SigningKeys()
	if len(keys) != 2 || keys[0].ID != k3.ID || !keys[0].Active || keys[1].ID != k2.ID || keys[1].Active {
		t.Fatalf("keys after two rotations: %+v", keys)
	}

	// Everything survives a reopen; the files are private.
	s.Close()
	if _, err := s.RotateSigningKey(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	s2 := openStore(t, dir)
	sameState(t, s, s2)
	if n, _ := s2.RetireSigningKeys(ctx); n != 1 || len(s2.SigningKeys()) != 1 || s2.SigningKeys()[0].ID != k3.ID {
		t.Fatalf("retire: %d %+v", n, s2.SigningKeys())
	}
	e3, _ := s2.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "r"})
	if e3.Seq != 3 || !strings.HasPrefix(e3.Event.ID, strings.TrimSuffix(e1.Event.ID, "_1")) {
		t.Fatalf("event after reopen: %+v (first was %s)", e3, e1.Event.ID)
	}
	s = s2
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if _, err := OpenFileStore(dir, nil); err == nil {
		t.Fatal("a second open of a directory in use succeeded")
	}
}

func TestFileStoreTornRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	presence(t, s, []string{"r"}, 3)
	if err := s.EnqueueWebhooks(ctx, 0, 2, []core.Webhook{wh("w1", "h"), wh("w2", "h")}); err != nil {
		t.Fatal(err)
	}
	before := s.PendingWebhooks()
	if _, err := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceLeft, Room: "r"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	logPath := filepath.Join(dir, logName)
	info, _ := os.Stat(logPath)
	// A crash in the middle of the last write: cut it at every length.
	for cut := int64(1); cut < 40; cut += 7 {
		if err := os.Truncate(logPath, info.Size()-cut); err != nil {
			t.Fatal(err)
		}
		s2 := openStore(t, dir)
		j, _ := s2.PresenceJournal(0, 0)
		if len(j) != 1 || j[0].Seq != 3 || !reflect.DeepEqual(norm(s2.PendingWebhooks()), norm(before)) || s2.WebhookCursor() != 2 {
			t.Fatalf("cut %d: journal %+v, pending %d, cursor %d", cut, j, len(s2.PendingWebhooks()), s2.WebhookCursor())
		}
		// Appends after the cut are readable on the next open.
		e, err := s2.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceLeft, Room: "r"})
		if err != nil || e.Seq != 4 {
			t.Fatalf("append after cut: %+v %v", e, err)
		}
		s2.Close()
		s3 := openStore(t, dir)
		if j, _ := s3.PresenceJournal(0, 0); len(j) != 2 || j[1].Seq != 4 {
			t.Fatalf("after append and reopen: %+v", j)
		}
		s3.Close()
		info, _ = os.Stat(logPath)
	}
	side, _ := filepath.Glob(filepath.Join(dir, logName+".corrupt-*"))
	if len(side) == 0 {
		t.Fatal("the unreadable end of the log was not kept")
	}
}

func TestFileStoreCompaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	s.compactAt = 4 << 10
	for i := range 60 {
		e, _ := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Metadata: strings.Repeat("m", 100)})
		if i%3 == 2 {
			if err := s.EnqueueWebhooks(ctx, s.WebhookCursor(), e.Seq, []core.Webhook{wh(e.Event.ID, "h")}); err != nil {
				t.Fatal(err)
			}
		}
		if i%5 == 4 {
			if err := s.SettleWebhooks(ctx, []string{s.PendingWebhooks()[0].ID}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(filepath.Join(dir, logName))
	if info.Size() >= 4<<10 {
		t.Fatalf("log is %d bytes: never compacted", info.Size())
	}
	s.Close()
	s2 := openStore(t, dir)
	sameState(t, s, s2)

	// A crash between the snapshot's rename and the log's truncation
	// leaves records the snapshot already holds: replay skips them.
	s2.compactAt = 1 << 30
	presence(t, s2, []string{"r"}, 5)
	logBytes, err := os.ReadFile(filepath.Join(dir, logName))
	if err != nil || len(logBytes) == 0 {
		t.Fatalf("log: %d bytes, %v", len(logBytes), err)
	}
	s2.mu.Lock()
	err = s2.compact()
	s2.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if err := os.WriteFile(filepath.Join(dir, logName), logBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	s3 := openStore(t, dir)
	defer s3.Close()
	sameState(t, s2, s3)
}

func TestFileStoreBounds(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	s.maxPending, s.maxJournal, s.maxDead = 3, 4, 2
	presence(t, s, []string{"r"}, 6) // seq 1..6, the journal keeps 3..6
	j, dropped := s.PresenceJournal(0, 10)
	if len(j) != 4 || j[0].Seq != 3 || dropped != 2 {
		t.Fatalf("journal %d entries from %d, dropped %d", len(j), j[0].Seq, dropped)
	}
	items := []core.Webhook{wh("w1", "h"), wh("w2", "h"), wh("w3", "h"), wh("w4", "h"), wh("w5", "h")}
	if err := s.EnqueueWebhooks(ctx, 0, 6, items); err != nil {
		t.Fatal(err)
	}
	p, d := s.PendingWebhooks(), s.DeadWebhooks()
	if len(p) != 3 || len(d) != 2 || d[0].ID != "w4" || d[0].LastError != ErrOutboxFull.Error() {
		t.Fatalf("pending %d, dead %+v", len(p), d)
	}
	dead := p[0]
	dead.LastError = "HTTP 400"
	if err := s.SettleWebhooks(ctx, nil, []core.Webhook{dead}); err != nil {
		t.Fatal(err)
	}
	if d := s.DeadWebhooks(); len(d) != 2 || d[1].ID != "w1" || d[0].ID != "w5" {
		t.Fatalf("dead list not trimmed oldest first: %+v", d)
	}
}

// Concurrent presence events share writes; each gets its own sequence
// number and id, and all survive a reopen.
func TestFileStoreConcurrentPresence(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var wg sync.WaitGroup
	seqs := make(chan uint64, 400)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				e, err := s.AppendPresence(context.Background(), core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Identity: fmt.Sprintf("g%d-%d", g, i)})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- e.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		if seen[q] || q < 1 || q > 400 {
			t.Fatalf("sequence %d twice or out of range", q)
		}
		seen[q] = true
	}
	s.Close()
	s2 := openStore(t, dir)
	defer s2.Close()
	j, _ := s2.PresenceJournal(0, 0)
	ids := map[string]bool{}
	for i, e := range j {
		if e.Seq != uint64(i+1) || ids[e.Event.ID] {
			t.Fatalf("entry %d: %+v", i, e)
		}
		ids[e.Event.ID] = true
	}
	if len(j) != 400 {
		t.Fatalf("%d entries after reopen", len(j))
	}
}
