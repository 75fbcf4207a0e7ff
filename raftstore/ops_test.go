package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/core"
)

// fsmPair applies every command to two state machines and fails the test
// when their answers or states differ.
type fsmPair struct {
	t      *testing.T
	a, b   *fsm
	idx    uint64
	now    time.Time
	events []core.ClusterEvent
	// cheap compares the states only when asked (same), not per command.
	cheap bool
}

// same fails the test if the two states differ in what digest renders.
func (p *fsmPair) same(digest func(st *state) any) {
	p.t.Helper()
	var da, db []byte
	p.a.read(func(st *state) { da, _ = json.Marshal(digest(st)) })
	p.b.read(func(st *state) { db, _ = json.Marshal(digest(st)) })
	if !bytes.Equal(da, db) {
		p.t.Fatalf("replicas differ:\n%s\n%s", da, db)
	}
}

func newFSMPair(t *testing.T) *fsmPair {
	p := &fsmPair{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p.a = newFSM(func(evs []core.ClusterEvent) { p.events = append(p.events, evs...) })
	p.b = newFSM(func([]core.ClusterEvent) {})
	return p
}

// apply commits c at the next index, one millisecond after the last.
func (p *fsmPair) apply(c Command) Result {
	p.t.Helper()
	p.idx++
	p.now = p.now.Add(time.Millisecond)
	c.Head().RequestID = fmt.Sprintf("RQ_%d", p.idx)
	c.Head().At = p.now.UnixNano()
	data, err := EncodeCommand(c)
	if err != nil {
		p.t.Fatalf("encode %v: %v", c.Kind(), err)
	}
	l := &raft.Log{Index: p.idx, Data: data}
	ra, rb := p.a.Apply(l).(Result), p.b.Apply(l).(Result)
	if !sameJSON(ra, rb) || (!p.cheap && !bytes.Equal(fsmDump(p.a), fsmDump(p.b))) {
		p.t.Fatalf("command %d (%v): replicas differ: %+v vs %+v", p.idx, c.Kind(), ra, rb)
	}
	return ra
}

// must applies c and fails on an error result.
func (p *fsmPair) must(c Command) Result {
	p.t.Helper()
	r := p.apply(c)
	if r.Code != "" {
		p.t.Fatalf("command %d (%v): %s %s", p.idx, c.Kind(), r.Code, r.Detail)
	}
	return r
}

func (p *fsmPair) state() *state {
	var st *state
	p.a.read(func(s *state) { st = s })
	return st
}

// journal renders the journal after seq as "kind room participant track reason" lines.
func (p *fsmPair) journal(after uint64) []string {
	var out []string
	for _, e := range p.state().Journal.Entries {
		if e.Seq > after {
			out = append(out, strings.Join(strings.Fields(fmt.Sprintf("%s %s %s %s %s", e.Kind, e.Room, e.ParticipantID, e.TrackID, e.Reason)), " "))
		}
	}
	return out
}

func join(pid, room, node string) PresenceEntry {
	return PresenceEntry{Kind: core.PresenceJoined, ParticipantID: pid, Identity: "id-" + pid, Room: room, Node: node}
}

func track(kind core.PresenceKind, pid, tid string) PresenceEntry {
	return PresenceEntry{Kind: kind, ParticipantID: pid, TrackID: tid, TrackKind: core.KindVideo}
}

func TestJournalOrderOnNodeDeathAndRelease(t *testing.T) {
	p := newFSMPair(t)
	p.must(&RegisterNode{ID: "n1"})
	p.must(&RegisterNode{ID: "n2"})
	p.must(&ClaimRoom{Room: "r1", Node: "n1"})
	p.must(&ClaimRoom{Room: "r2", Node: "n1"})
	p.must(&Presence{Changes: []PresenceEntry{
		join("PA_1", "r1", "n1"), join("PA_2", "r1", "n1"), join("PA_3", "r2", "n1"),
		track(core.PresenceTrackPublished, "PA_1", "TR_a"),
		track(core.PresenceTrackPublished, "PA_1", "TR_b"),
		track(core.PresenceTrackPublished, "PA_1", "TR_a"), // repeated: ignored
		track(core.PresenceTrackPublished, "PA_3", "TR_c"),
		track(core.PresenceTrackUnpublished, "PA_1", "TR_b"),
		track(core.PresenceTrackUnpublished, "PA_1", "TR_zz"),  // unknown track: ignored
		track(core.PresenceTrackPublished, "PA_ghost", "TR_g"), // absent participant: ignored
		{Kind: core.PresenceRoomStarted, Room: "r9"},           // room kinds: ignored
		{Kind: core.PresenceRoomFinished, Room: "r1"},
	}})
	want := []string{
		"room_started r1", "room_started r2",
		"joined r1 PA_1", "joined r1 PA_2", "joined r2 PA_3",
		"track_published r1 PA_1 TR_a", "track_published r1 PA_1 TR_b", "track_published r2 PA_3 TR_c",
		"track_unpublished r1 PA_1 TR_b",
	}
	if got := p.journal(0); !equalLines(got, want) {
		t.Fatalf("journal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := p.state().Rooms["r9"]; ok {
		t.Fatal("a room_started presence change created a room")
	}
	seq := p.state().Journal.Seq
	p.must(&NodeDown{ID: "n1", Reason: "node_failed"})
	want = []string{
		"track_unpublished r1 PA_1 TR_a node_failed", "left r1 PA_1 node_failed", "left r1 PA_2 node_failed",
		"room_finished r1 node_failed",
		"track_unpublished r2 PA_3 TR_c node_failed", "left r2 PA_3 node_failed", "room_finished r2 node_failed",
	}
	if got := p.journal(seq); !equalLines(got, want) {
		t.Fatalf("journal on node death:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A release: the real leave first, then what is still recorded ends
	// with room_released, then the room finishes.
	seq = p.state().Journal.Seq
	p.must(&ClaimRoom{Room: "r3", Node: "n2"})
	p.must(&Presence{Changes: []PresenceEntry{join("PA_4", "r3", "n2"), join("PA_5", "r3", "n2"),
		track(core.PresenceTrackPublished, "PA_4", "TR_d"), track(core.PresenceTrackPublished, "PA_5", "TR_e")}})
	p.must(&Presence{Changes: []PresenceEntry{{Kind: core.PresenceLeft, ParticipantID: "PA_5", Reason: "leave"}}})
	p.must(&ReleaseRoom{Room: "r3", Node: "n2"})
	want = []string{
		"room_started r3", "joined r3 PA_4", "joined r3 PA_5", "track_published r3 PA_4 TR_d", "track_published r3 PA_5 TR_e",
		"track_unpublished r3 PA_5 TR_e leave", "left r3 PA_5 leave",
		"track_unpublished r3 PA_4 TR_d room_released", "left r3 PA_4 room_released", "room_finished r3 released",
	}
	if got := p.journal(seq); !equalLines(got, want) {
		t.Fatalf("journal on release:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Ids are stable, distinct and in the events.
	ids := map[string]bool{}
	for _, e := range p.state().Journal.Entries {
		id := e.Event().ID
		if !strings.HasPrefix(id, "pe_") || len(id) != 27 || ids[id] {
			t.Fatalf("entry %d id %q", e.Seq, id)
		}
		ids[id] = true
	}
	var presence int
	for _, ev := range p.events {
		if ev.Kind == core.ClusterPresence {
			presence++
			if !ids[ev.Presence.ID] {
				t.Fatalf("event id %q is not a journal id", ev.Presence.ID)
			}
		}
	}
	if presence != len(ids) {
		t.Fatalf("%d presence events for %d journal entries", presence, len(ids))
	}
	// The same entry always gets the same id.
	e := p.state().Journal.Entries[0]
	if e.EntryID() != (PresenceEntry{Index: e.Index, Seq: e.Seq, Kind: e.Kind, ParticipantID: e.ParticipantID}).EntryID() {
		t.Fatal("id depends on more than index, seq, kind and participant")
	}
}

func equalLines(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func webhooks(host string, ids ...string) []core.Webhook {
	var out []core.Webhook
	for _, id := range ids {
		out = append(out, sampleWebhook(id, host))
	}
	return out
}

func ids(ws []core.Webhook) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return strings.Join(out, ",")
}

func TestOutboxRules(t *testing.T) {
	p := newFSMPair(t)
	p.must(&ClaimRoom{Room: "r", Node: "n1"})
	p.must(&Presence{Changes: []PresenceEntry{join("PA_1", "r", "n1"), join("PA_2", "r", "n1")}})
	st := p.state()
	if st.Journal.Seq != 3 {
		t.Fatalf("journal seq %d", st.Journal.Seq)
	}
	r := p.must(&EnqueueWebhooks{From: 0, To: 2, Items: webhooks("a.test", "W1", "W2", "W1")})
	if st.Outbox.Cursor != 2 || ids(st.Outbox.Items) != "W1,W2" || len(st.Journal.Entries) != 1 || st.Journal.Entries[0].Seq != 3 {
		t.Fatalf("after enqueue: %+v %+v (%+v)", st.Outbox, st.Journal, r)
	}
	if page, gone := st.journalPage(0, 0); len(page) != 1 || page[0].Seq != 3 || gone != 2 {
		t.Fatalf("journal page after trimming: %+v, %d gone", page, gone)
	}
	if page, gone := st.journalPage(2, 1); len(page) != 1 || gone != 0 {
		t.Fatalf("journal page after the cursor: %+v, %d gone", page, gone)
	}
	w1 := st.Outbox.Items[0]
	if w1.Seq != 1 || st.Outbox.Items[1].Seq != 2 || !w1.Enqueued.Equal(p.now) || w1.Body == nil || w1.Headers["x-site"] != "a" {
		t.Fatalf("enqueued item: %+v", w1)
	}
	// A stale cursor is a conflict and changes nothing.
	before := outboxDump(st)
	r = p.apply(&EnqueueWebhooks{From: 0, To: 3, Items: webhooks("a.test", "W9")})
	if !errors.Is(r.Err(), ErrConflict) || core.CodeOf(public(r.Err())) != core.CodeConflict {
		t.Fatalf("stale cursor: %+v", r)
	}
	// A cursor beyond the journal is refused.
	if r := p.apply(&EnqueueWebhooks{From: 2, To: 4}); r.Code != "bad_command" {
		t.Fatalf("cursor beyond the journal: %+v", r)
	}
	if after := outboxDump(st); !bytes.Equal(before, after) {
		t.Fatal("refused steps changed the state")
	}
	// Ids already pending are ignored; the cursor still moves.
	p.must(&EnqueueWebhooks{From: 2, To: 3, Items: append(webhooks("a.test", "W2", "W3"), webhooks("b.test", "W4", "W5")...)})
	if st.Outbox.Cursor != 3 || ids(st.Outbox.Items) != "W1,W2,W3,W4,W5" || len(st.Journal.Entries) != 0 {
		t.Fatalf("after second enqueue: %+v", st.Outbox)
	}
	if page, gone := st.journalPage(3, 10); len(page) != 0 || gone != 0 {
		t.Fatalf("journal page at its end: %+v, %d gone", page, gone)
	}
	if page, gone := st.journalPage(1, 10); len(page) != 0 || gone != 2 {
		t.Fatalf("journal page before the cursor: %+v, %d gone", page, gone)
	}
	// Settle: W1 acked, W2 and W4 dead, unknown ids ignored.
	r = p.must(&SettleWebhooks{Acked: []string{"W1", "nope"}, Dead: []core.Webhook{
		{ID: "W4", Attempts: 1, LastError: "404 Not Found"}, {ID: "W2", Attempts: 7, LastError: "max age"}, {ID: "ghost"}}})
	if r.Count != 3 || ids(st.Outbox.Items) != "W3,W5" || ids(st.Outbox.Dead) != "W4,W2" {
		t.Fatalf("after settle: %+v %+v", r, st.Outbox)
	}
	if d := st.Outbox.Dead[1]; d.Attempts != 7 || d.LastError != "max age" || !d.Died.Equal(p.now) || d.Body == nil || d.Seq != 2 {
		t.Fatalf("dead letter: %+v", d)
	}
	// A dead id is not enqueued again.
	p.must(&EnqueueWebhooks{From: 3, To: 3, Items: webhooks("a.test", "W2")})
	if ids(st.Outbox.Items) != "W3,W5" {
		t.Fatalf("dead id enqueued again: %s", ids(st.Outbox.Items))
	}
	// Retry by host: W4 (b.test) goes back to the end with a new seq.
	if r := p.must(&RetryWebhooks{Host: "b.test"}); r.Count != 1 {
		t.Fatalf("retry: %+v", r)
	}
	if ids(st.Outbox.Items) != "W3,W5,W4" || ids(st.Outbox.Dead) != "W2" {
		t.Fatalf("after retry: %+v", st.Outbox)
	}
	if w := st.Outbox.Items[2]; w.Seq != 6 || w.Attempts != 0 || w.LastError != "" || !w.Died.IsZero() || !w.Enqueued.Equal(p.now) {
		t.Fatalf("retried: %+v", w)
	}
	// Clear pending of one host, then the dead of all.
	if r := p.must(&ClearWebhooks{Host: "b.test"}); r.Count != 2 || ids(st.Outbox.Items) != "W3" {
		t.Fatalf("clear b.test: %+v %s", r, ids(st.Outbox.Items))
	}
	if r := p.must(&ClearWebhooks{Dead: true}); r.Count != 1 || len(st.Outbox.Dead) != 0 {
		t.Fatalf("clear dead: %+v", r)
	}
	if r := p.must(&ClearWebhooks{Host: "nobody.test"}); r.Count != 0 {
		t.Fatalf("clear of an unknown host: %+v", r)
	}
}

// outboxDump renders the journal and the outbox.
func outboxDump(st *state) []byte {
	b, _ := json.Marshal([]any{st.Journal, st.Outbox})
	return b
}

func TestOutboxBounds(t *testing.T) {
	p := newFSMPair(t)
	fill := func(f *fsm) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range maxOutbox - 1 {
			f.st.Outbox.Items = append(f.st.Outbox.Items, core.Webhook{ID: fmt.Sprintf("P%d", i), Seq: uint64(i + 1)})
		}
		for i := range maxDead {
			f.st.Outbox.Dead = append(f.st.Outbox.Dead, core.Webhook{ID: fmt.Sprintf("D%d", i)})
		}
		f.st.Outbox.Seq = maxOutbox - 1
	}
	fill(p.a)
	fill(p.b)
	p.cheap = true
	defer p.same(func(st *state) any {
		o := st.Outbox
		return []any{len(o.Items), o.Items[len(o.Items)-1], o.Dead[len(o.Dead)-3:], o.Evicted, o.Seq}
	})
	st := p.state()
	// One fits; the next two go dead with "outbox full", evicting the
	// oldest dead letters.
	p.must(&EnqueueWebhooks{Items: webhooks("a.test", "N1", "N2", "N3")})
	if len(st.Outbox.Items) != maxOutbox || st.Outbox.Items[maxOutbox-1].ID != "N1" {
		t.Fatalf("%d pending, last %s", len(st.Outbox.Items), st.Outbox.Items[len(st.Outbox.Items)-1].ID)
	}
	dead := st.Outbox.Dead
	if len(dead) != maxDead || st.Outbox.Evicted != 2 || dead[0].ID != "D2" || ids(dead[maxDead-2:]) != "N2,N3" ||
		dead[maxDead-1].LastError != "outbox full" || dead[maxDead-1].Died.IsZero() {
		t.Fatalf("dead: %d, evicted %d, first %s, last %+v", len(dead), st.Outbox.Evicted, dead[0].ID, dead[maxDead-1])
	}
	// Retry with a full outbox moves nothing.
	if r := p.must(&RetryWebhooks{}); r.Count != 0 || len(st.Outbox.Dead) != maxDead {
		t.Fatalf("retry into a full outbox: %+v", r)
	}
}

func TestSigningKeyRules(t *testing.T) {
	p := newFSMPair(t)
	k1, k2, k3 := sampleKey(1), sampleKey(2), sampleKey(3)
	if r := p.must(&RotateSigningKey{Key: k1, IfNone: true}); !r.Created {
		t.Fatalf("first key: %+v", r)
	}
	if r := p.must(&RotateSigningKey{Key: k2, IfNone: true}); r.Created {
		t.Fatalf("ensure with a key present: %+v", r)
	}
	st := p.state()
	if len(st.SigningKeys) != 1 || st.SigningKeys[0].ID != k1.ID || !st.SigningKeys[0].Active || !st.SigningKeys[0].Created.Equal(p.now.Add(-time.Millisecond)) {
		t.Fatalf("keys: %+v", keyIDs(st.SigningKeys))
	}
	p.must(&RotateSigningKey{Key: k2})
	if got := keyIDs(st.SigningKeys); got != k2.ID+"*,"+k1.ID {
		t.Fatalf("after rotation: %s", got)
	}
	p.must(&RotateSigningKey{Key: k3})
	if got := keyIDs(st.SigningKeys); got != k3.ID+"*,"+k2.ID {
		t.Fatalf("after a second rotation: %s", got)
	}
	if r := p.must(&RetireSigningKeys{}); r.Count != 1 || keyIDs(st.SigningKeys) != k3.ID+"*" {
		t.Fatalf("retire: %+v %s", r, keyIDs(st.SigningKeys))
	}
	if r := p.must(&RetireSigningKeys{}); r.Count != 0 {
		t.Fatalf("retire again: %+v", r)
	}
	// Malformed keys never reach the log.
	bad := k1
	bad.ID = "0000000000000000"
	if _, err := EncodeCommand(&RotateSigningKey{Header: Header{RequestID: "x"}, Key: bad}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("key with a wrong id: %v", err)
	}
	bad = k1
	bad.Private = append([]byte(nil), k1.Private...)
	bad.Private[40] ^= 1 // public half no longer matches the seed
	if _, err := EncodeCommand(&RotateSigningKey{Header: Header{RequestID: "x"}, Key: bad}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("inconsistent key: %v", err)
	}
}

func keyIDs(ks []core.SigningKey) string {
	var out []string
	for _, k := range ks {
		s := k.ID
		if k.Active {
			s += "*"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func TestAPIKeyRules(t *testing.T) {
	p := newFSMPair(t)
	p.must(&PutAPIKey{Key: core.APIKey{ID: "AK1", Name: "site", Secret: "s"}})
	if r := p.apply(&PutAPIKey{Key: core.APIKey{ID: "AK1", Secret: "other"}}); !errors.Is(public(r.Err()), core.ErrConflict) {
		t.Fatalf("duplicate id: %+v", r)
	}
	if k := p.state().APIKeys["AK1"]; k.Secret != "s" || k.Created.IsZero() {
		t.Fatalf("key: %+v", k)
	}
	p.must(&DeleteAPIKey{ID: "AK1"})
	if r := p.apply(&DeleteAPIKey{ID: "AK1"}); !errors.Is(public(r.Err()), core.ErrNotFound) {
		t.Fatalf("delete of a missing key: %+v", r)
	}
	if _, err := EncodeCommand(&PutAPIKey{Header: Header{RequestID: "x"}, Key: core.APIKey{ID: "AK2"}}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("key without secret: %v", err)
	}
}

func TestIdempotencyRules(t *testing.T) {
	p := newFSMPair(t)
	st := p.state()
	rec := core.IdempotencyRecord{Key: "AK1:k", Owner: "n1", Hash: "h", Done: true, Status: 999, Result: []byte("x")}
	if r := p.must(&ReserveIdempotency{Record: rec, TTL: time.Second}); !r.Created {
		t.Fatalf("reserve: %+v", r)
	}
	got := st.Idempotency.Records["AK1:k"]
	if got.Done || got.Status != 0 || got.Result != nil || !got.Expires.Equal(p.now.Add(time.Second)) || got.Hash != "h" {
		t.Fatalf("reserved: %+v", got)
	}
	if r := p.must(&ReserveIdempotency{Record: core.IdempotencyRecord{Key: "AK1:k", Hash: "other"}, TTL: time.Second}); r.Created {
		t.Fatalf("second reserve: %+v", r)
	}
	p.must(&CompleteIdempotency{Record: core.IdempotencyRecord{Key: "AK1:k", Status: 201, Result: []byte(`{"id":1}`)}})
	if got := st.Idempotency.Records["AK1:k"]; !got.Done || got.Status != 201 || string(got.Result) != `{"id":1}` ||
		got.Hash != "h" || st.Idempotency.Bytes != 8 {
		t.Fatalf("completed: %+v (%d bytes)", got, st.Idempotency.Bytes)
	}
	if r := p.apply(&CompleteIdempotency{Record: core.IdempotencyRecord{Key: "nope"}}); !errors.Is(public(r.Err()), core.ErrNotFound) {
		t.Fatalf("complete of a missing key: %+v", r)
	}
	// Expiry by command time: a second later the record is gone and the
	// key can be reserved again.
	p.now = p.now.Add(time.Second)
	if r := p.must(&ReserveIdempotency{Record: core.IdempotencyRecord{Key: "AK1:k", Hash: "h2"}, TTL: time.Minute}); !r.Created {
		t.Fatalf("reserve after expiry: %+v", r)
	}
	if st.Idempotency.Records["AK1:k"].Hash != "h2" || st.Idempotency.Bytes != 0 {
		t.Fatalf("after expiry: %+v", st.Idempotency)
	}
	p.must(&ForgetIdempotency{Key: "AK1:k"})
	p.must(&ForgetIdempotency{Key: "AK1:k"})
	if len(st.Idempotency.Records) != 0 || len(st.Idempotency.Order) != 0 {
		t.Fatalf("after forget: %+v", st.Idempotency)
	}
	// Bounded by total result bytes: the oldest go first. The table is
	// filled directly up to one result short of the bound, then two more
	// results arrive through the log.
	big := bytes.Repeat([]byte("a"), maxIdempotencyResult)
	full := maxIdempotencySize / maxIdempotencyResult
	for _, f := range []*fsm{p.a, p.b} {
		f.mu.Lock()
		for i := range full - 1 {
			k := fmt.Sprintf("AK1:big%d", i)
			f.st.Idempotency.Records[k] = core.IdempotencyRecord{Key: k, Done: true, Result: big, Expires: p.now.Add(time.Hour)}
			f.st.Idempotency.Order = append(f.st.Idempotency.Order, k)
			f.st.Idempotency.Bytes += len(big)
		}
		f.mu.Unlock()
	}
	p.cheap = true
	for i := full - 1; i < full+1; i++ {
		key := fmt.Sprintf("AK1:big%d", i)
		p.must(&ReserveIdempotency{Record: core.IdempotencyRecord{Key: key}, TTL: time.Hour})
		p.must(&CompleteIdempotency{Record: core.IdempotencyRecord{Key: key, Status: 200, Result: big}})
	}
	p.same(func(st *state) any {
		return []any{st.Idempotency.Order, st.Idempotency.Bytes, st.Idempotency.Records[st.Idempotency.Order[len(st.Idempotency.Order)-1]].Expires}
	})
	if st.Idempotency.Bytes != maxIdempotencySize || len(st.Idempotency.Records) != full {
		t.Fatalf("%d records, %d bytes", len(st.Idempotency.Records), st.Idempotency.Bytes)
	}
	if _, ok := st.Idempotency.Records["AK1:big0"]; ok {
		t.Fatal("oldest record kept")
	}
	if _, ok := st.Idempotency.Records[fmt.Sprintf("AK1:big%d", full)]; !ok {
		t.Fatal("newest record evicted")
	}
	if _, err := EncodeCommand(&CompleteIdempotency{Header: Header{RequestID: "x"},
		Record: core.IdempotencyRecord{Key: "k", Result: make([]byte, maxIdempotencyResult+1)}}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("oversized result: %v", err)
	}
	// Bounded by count: one record through the log, the rest of a full
	// table filled in directly, then one more.
	p2 := newFSMPair(t)
	p2.must(&ReserveIdempotency{Record: core.IdempotencyRecord{Key: "k00000"}, TTL: time.Hour})
	for _, f := range []*fsm{p2.a, p2.b} {
		f.mu.Lock()
		for i := 1; i < maxIdempotency; i++ {
			k := fmt.Sprintf("k%05d", i)
			f.st.Idempotency.Records[k] = core.IdempotencyRecord{Key: k, Expires: p2.now.Add(time.Hour)}
			f.st.Idempotency.Order = append(f.st.Idempotency.Order, k)
		}
		f.mu.Unlock()
	}
	p2.must(&ReserveIdempotency{Record: core.IdempotencyRecord{Key: "last"}, TTL: time.Hour})
	st2 := p2.state()
	if len(st2.Idempotency.Records) != maxIdempotency || st2.Idempotency.Order[0] != "k00001" {
		t.Fatalf("%d records, oldest %s", len(st2.Idempotency.Records), st2.Idempotency.Order[0])
	}
}

// TestJournalEviction: beyond maxJournal entries past the cursor, the
// oldest are evicted, counted as dropped, and reported as gone to a
// reader at the cursor.
func TestJournalEviction(t *testing.T) {
	p := newFSMPair(t)
	p.cheap = true
	n := maxJournal + 1034
	for _, f := range []*fsm{p.a, p.b} {
		f.mu.Lock()
		f.st.Journal.Entries = make([]PresenceEntry, n)
		for i := range f.st.Journal.Entries {
			f.st.Journal.Entries[i].Seq = uint64(i + 1)
		}
		f.st.Journal.Seq = uint64(n)
		f.mu.Unlock()
	}
	p.must(&EnqueueWebhooks{From: 0, To: 10})
	p.must(&ClaimRoom{Room: "r", Node: "n1"}) // one more entry: 1025 over, none processed
	st := p.state()
	if st.Journal.Dropped != 1025 || len(st.Journal.Entries) != maxJournal {
		t.Fatalf("dropped %d, %d kept", st.Journal.Dropped, len(st.Journal.Entries))
	}
	page, gone := st.journalPage(st.Outbox.Cursor, 5)
	if gone != 1025 || len(page) != 5 || page[0].Seq != 1036 {
		t.Fatalf("page at the cursor: first %d, %d gone", page[0].Seq, gone)
	}
	p.same(func(st *state) any { return []any{st.Journal.Dropped, st.Journal.Seq, len(st.Journal.Entries)} })
}
