package webhook

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

func seedRecords(f *testing.F) {
	recs := []record{
		{LSN: 1, Op: opEvent, Event: &core.JournalEntry{Seq: 1, Event: core.PresenceEvent{ID: "EV_x_1", Kind: core.PresenceJoined, Room: "r", At: time.Unix(1700000000, 0)}}},
		{LSN: 2, Op: opEnqueue, From: 0, To: 1, Items: []core.Webhook{{ID: "w1", Seq: 1, URL: "http://h/x", Body: []byte(`{"a":1}`)}}},
		{LSN: 3, Op: opSettle, IDs: []string{"w1"}, Dead: []core.Webhook{{ID: "w2", LastError: "HTTP 400"}}},
		{LSN: 4, Op: opClear, IDs: []string{"w3"}, Flag: true},
		{LSN: 5, Op: opKeys, Keys: []core.SigningKey{{ID: "k", Private: make([]byte, 64), Active: true}}},
	}
	var all []byte
	for i := range recs {
		b, err := encodeRecord(&recs[i])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add(all[:len(all)-3])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
}

// FuzzDecodeRecord feeds arbitrary bytes to the log decoder: it must never
// panic, must report a short input as torn or corrupt, and whatever it
// accepts must encode back to a record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for off := 0; off < len(b); {
			rec, n, err := decodeRecord(b[off:])
			if err != nil {
				if !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if n <= frameHeader || off+n > len(b) {
				t.Fatalf("size %d at %d of %d", n, off, len(b))
			}
			again, err := encodeRecord(&rec)
			if err != nil {
				t.Fatal(err)
			}
			rec2, n2, err := decodeRecord(again)
			if err != nil || n2 != len(again) {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
			a, _ := encodeRecord(&rec2)
			if !bytes.Equal(a, again) {
				t.Fatalf("round trip differs:\n%s\n%s", again[frameHeader:], a[frameHeader:])
			}
			off += n
		}
	})
}

func TestDecodeRecordRejects(t *testing.T) {
	good, _ := encodeRecord(&record{LSN: 1, Op: opSettle, IDs: []string{"w"}})
	if _, n, err := decodeRecord(good); err != nil || n != len(good) {
		t.Fatalf("good record: %d %v", n, err)
	}
	for i := range len(good) {
		if _, _, err := decodeRecord(good[:i]); !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-2] ^= 1
	if _, _, err := decodeRecord(flipped); !errors.Is(err, errCorrupt) {
		t.Fatalf("flipped bit: %v", err)
	}
	for _, rec := range []record{{LSN: 0, Op: opSettle}, {LSN: 1, Op: "boom"}, {LSN: 1, Op: opEvent}, {LSN: 1, Op: opEnqueue, From: 3, To: 2}, {LSN: 1, Op: opEnqueue, Items: []core.Webhook{{}}}} {
		b, _ := encodeRecord(&rec)
		if _, _, err := decodeRecord(b); !errors.Is(err, errCorrupt) {
			t.Fatalf("%+v accepted: %v", rec, err)
		}
	}
}

// FuzzOpenLog opens a store whose log holds arbitrary bytes: opening
// never fails or panics (an unreadable end is cut off and kept aside),
// the store then works, and a second open sees the same state.
func FuzzOpenLog(f *testing.F) {
	seedRecords(f)
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		dir, err := os.MkdirTemp(base, "")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, logName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFileStore(dir, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		ctx := context.Background()
		_ = s.PendingWebhooks()
		_, _ = s.PresenceJournal(0, 10)
		if _, err := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "r"}); err != nil {
			t.Fatalf("append: %v", err)
		}
		if err := s.EnqueueWebhooks(ctx, s.WebhookCursor(), s.WebhookCursor(), []core.Webhook{{ID: "fz", URL: "http://h/"}}); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		s.Close()
		s2, err := OpenFileStore(dir, nil)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		if !reflect.DeepEqual(norm(s.PendingWebhooks()), norm(s2.PendingWebhooks())) || s.WebhookCursor() != s2.WebhookCursor() {
			t.Fatalf("state differs after reopen: %+v / %+v, cursor %d / %d", s.PendingWebhooks(), s2.PendingWebhooks(), s.WebhookCursor(), s2.WebhookCursor())
		}
	})
}
