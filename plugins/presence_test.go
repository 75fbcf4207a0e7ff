package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

// presenceEvent returns a committed event of kind, with the fields its
// kind carries.
func presenceEvent(kind core.PresenceKind, id, room string) core.PresenceEvent {
	ev := core.PresenceEvent{ID: id, Kind: kind, Room: room, Node: "n1", At: time.UnixMilli(1_700_000_000_123)}
	switch kind {
	case core.PresenceRoomStarted, core.PresenceRoomFinished:
	case core.PresenceTrackPublished, core.PresenceTrackUnpublished:
		ev.Identity, ev.ParticipantID, ev.TrackID, ev.TrackKind = "alice", "PA_1", "TR_1", core.KindVideo
	default:
		ev.Identity, ev.ParticipantID = "alice", "PA_1"
	}
	return ev
}

var bodyTypes = map[core.PresenceKind]string{
	core.PresenceJoined: "participant.joined", core.PresenceLeft: "participant.left",
	core.PresenceRoomStarted: "room.started", core.PresenceRoomFinished: "room.finished",
	core.PresenceTrackPublished: "track.published", core.PresenceTrackUnpublished: "track.unpublished",
}

func ids(ws []Webhook) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Request.ID
	}
	return out
}

func TestPresenceWebhooksStock(t *testing.T) {
	sink := &recordingSink{}
	m, _ := newManager(t, WithWebhookSink(sink))
	load(t, m, stock(t, "presencewebhook", map[string]any{"targets": []map[string]any{
		{"name": "all", "url": "https://all.example/hook"},
		{"name": "tracks", "url": "https://tracks.example/hook", "events": []string{"track_published", "track.unpublished"}},
	}}))
	ctx := context.Background()
	seen := map[string]core.PresenceKind{}
	for i, kind := range core.PresenceKinds {
		ev := presenceEvent(kind, fmt.Sprintf("J%d", i+1), "site.example/standup")
		first, err := m.PresenceWebhooks(ctx, ev)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		again, err := m.PresenceWebhooks(ctx, ev)
		if err != nil {
			t.Fatalf("%s again: %v", kind, err)
		}
		want := 1
		if strings.HasPrefix(string(kind), "track") {
			want = 2
		}
		if len(first) != want || strings.Join(ids(first), ",") != strings.Join(ids(again), ",") {
			t.Fatalf("%s: ids %v then %v, want %d webhooks with the same ids", kind, ids(first), ids(again), want)
		}
		for j, w := range first {
			if string(w.Request.Body) != string(again[j].Request.Body) || w.Plugin != "presencewebhook" ||
				w.Request.Event != bodyTypes[kind] {
				t.Fatalf("%s: %+v vs %+v", kind, w, again[j])
			}
			if k, dup := seen[w.Request.ID]; dup {
				t.Fatalf("%s: id %s already used by %s", kind, w.Request.ID, k)
			}
			seen[w.Request.ID] = kind
		}
		var b struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(first[0].Request.Body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Type != bodyTypes[kind] || b.Data["event_id"] != ev.ID || b.Data["site"] != "site.example" ||
			(ev.TrackID != "") != (b.Data["track_id"] == "TR_1" && b.Data["track_kind"] == "video") {
			t.Fatalf("%s: body %s", kind, first[0].Request.Body)
		}
	}
	// A replay of a journal entry is the same event, even at another time;
	// an event without a journal id gets a stable hashed one.
	ev := presenceEvent(core.PresenceJoined, "J1", "site.example/standup")
	ev.At = ev.At.Add(time.Hour)
	ws, _ := m.PresenceWebhooks(ctx, ev)
	if len(ws) != 1 || seen[ws[0].Request.ID] != core.PresenceJoined {
		t.Fatalf("replayed J1: %v", ids(ws))
	}
	ev.ID = ""
	a, _ := m.PresenceWebhooks(ctx, ev)
	b, _ := m.PresenceWebhooks(ctx, ev)
	if len(a) != 1 || a[0].Request.ID != b[0].Request.ID || seen[a[0].Request.ID] != "" {
		t.Fatalf("unjournaled event: %v / %v", ids(a), ids(b))
	}
	if got := sink.all(); len(got) != 0 {
		t.Fatalf("PresenceWebhooks handed %d webhooks to the sink", len(got))
	}
	st, _ := m.Stats("presencewebhook")
	calls := uint64(2*len(core.PresenceKinds) + 3)
	if st.Webhooks != 2*(uint64(len(core.PresenceKinds))+2)+3 || len(st.Hooks) != 1 || st.Hooks[0].Hook != abi.HookPresence ||
		st.Hooks[0].Latency.Count != calls || st.Hooks[0].Failures != nil {
		t.Fatalf("stats: webhooks %d, hooks %+v", st.Webhooks, st.Hooks)
	}
}

func TestPresenceWebhooksFailures(t *testing.T) {
	m, _ := newManager(t)
	bad := testplug(t, "bad", "v1", map[string]any{"webhook_url": "https://bad.example/hook"})
	bad.Order, bad.Limits.CallTimeout = 5, 250*time.Millisecond
	load(t, m, bad)
	load(t, m, stock(t, "presencewebhook", map[string]any{"targets": []map[string]any{
		{"name": "a", "url": "https://a.example/hook"}}}))
	ctx := context.Background()

	// Both succeed: the chain's webhooks in chain order.
	ws, err := m.PresenceWebhooks(ctx, presenceEvent(core.PresenceJoined, "J1", "fine"))
	if err != nil || len(ws) != 2 || ws[0].Plugin != "bad" || ws[1].Plugin != "presencewebhook" {
		t.Fatalf("healthy chain: %v %v", ws, err)
	}
	cases := []struct {
		room      string
		kind      error
		transient bool
	}{
		{"loop", ErrTimeout, true},
		{"exit", ErrTrap, false},
		{"panic", ErrPluginFailed, false},
	}
	for i, tc := range cases {
		ev := presenceEvent(core.PresenceLeft, fmt.Sprintf("J%d", i+2), tc.room)
		start := time.Now()
		ws, err := m.PresenceWebhooks(ctx, ev)
		var pe *PresenceError
		var ce *CallError
		if !errors.As(err, &pe) || !errors.Is(err, tc.kind) || !errors.As(err, &ce) || ce.Plugin != "bad" {
			t.Fatalf("%s: err %v, want a PresenceError of %v from bad", tc.room, err, tc.kind)
		}
		if IsTransient(err) != tc.transient || ce.Transient() != tc.transient || len(pe.Failures) != 1 || pe.Plugins != 2 ||
			pe.EventID != ev.ID || !strings.Contains(err.Error(), "1 of 2 plugins failed") {
			t.Fatalf("%s: %v: transient %v, failures %d", tc.room, err, IsTransient(err), len(pe.Failures))
		}
		if len(ws) != 1 || ws[0].Plugin != "presencewebhook" || ws[0].Request.Event != "participant.left" {
			t.Fatalf("%s: webhooks %+v", tc.room, ws)
		}
		t.Logf("%s: %v after %v", tc.room, err, time.Since(start).Round(time.Millisecond))
	}
	st, _ := m.Stats("bad")
	var presence HookStats
	for _, h := range st.Hooks {
		if h.Hook == abi.HookPresence {
			presence = h
		}
	}
	if presence.Failures[FailTimeout] != 1 || presence.Failures[FailTrap] != 1 || presence.Failures[FailPluginError] != 1 ||
		presence.Latency.Count != 4 {
		t.Fatalf("bad's presence stats %+v", presence)
	}

	// A canceled caller gets transient failures, and no webhooks are lost
	// silently: every plugin reports.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ws, err = m.PresenceWebhooks(cctx, presenceEvent(core.PresenceJoined, "J9", "fine"))
	var pe *PresenceError
	if !errors.As(err, &pe) || !errors.Is(err, ErrCanceled) || !IsTransient(err) || len(pe.Failures) != 2 || len(ws) != 0 {
		t.Fatalf("canceled: %v %v", ws, err)
	}

	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.PresenceWebhooks(ctx, presenceEvent(core.PresenceJoined, "J10", "fine")); !errors.Is(err, ErrClosed) ||
		!IsTransient(err) {
		t.Fatalf("after close: %v", err)
	}
}

func TestIsTransient(t *testing.T) {
	for _, tc := range []struct {
		kind      error
		transient bool
	}{
		{ErrTimeout, true}, {ErrBackedOff, true}, {ErrCanceled, true}, {ErrInit, true},
		{ErrTrap, false}, {ErrOutOfMemory, false}, {ErrBadOutput, false}, {ErrInputTooLarge, false},
		{ErrPluginFailed, false}, {ErrHookNotServed, false},
	} {
		ce := &CallError{Plugin: "p", Hook: abi.HookPresence, Kind: tc.kind}
		wrapped := fmt.Errorf("outer: %w", ce)
		pe := &PresenceError{Failures: []error{&CallError{Kind: ErrTrap}, ce}}
		if ce.Transient() != tc.transient || IsTransient(wrapped) != tc.transient || IsTransient(pe) != tc.transient ||
			IsTransient(tc.kind) != tc.transient {
			t.Errorf("%v: want transient %v", tc.kind, tc.transient)
		}
	}
	if IsTransient(nil) || IsTransient(errors.New("other")) {
		t.Error("nil or unknown error is transient")
	}
}

func TestCallLatencyHistogram(t *testing.T) {
	m, _ := newManager(t)
	load(t, m, testplug(t, "p", "v1", nil))
	ctx := context.Background()
	in := joinInput(t, "r")
	const n = 20
	for range n {
		if _, err := m.Call(ctx, "p", abi.HookJoin, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Call(ctx, "p", abi.HookJoin, joinInput(t, "garbage")); !errors.Is(err, ErrBadOutput) {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := m.Call(ctx, "p", abi.HookJoin, make([]byte, m.List()[0].Limits.MaxInput+1)); !errors.Is(err, ErrInputTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	infos := m.List()
	if len(infos) != 1 {
		t.Fatal(infos)
	}
	st := infos[0].Stats
	var join HookStats
	var hooks []abi.Hook
	for _, h := range st.Hooks {
		hooks = append(hooks, h.Hook)
		if h.Hook == abi.HookJoin {
			join = h
		}
	}
	// Every hook the plugin serves is listed, called or not; init is not.
	if fmt.Sprint(hooks) != fmt.Sprint(infos[0].Hooks) {
		t.Fatalf("hooks %v, plugin serves %v", hooks, infos[0].Hooks)
	}
	h := join.Latency
	if h.Count != n+1 || len(h.Bounds) != 15 || len(h.Counts) != 15 || h.Bounds[0] != 10*time.Microsecond ||
		h.Bounds[14] != time.Second || h.Sum <= 0 || h.Counts[14] > h.Count {
		t.Fatalf("join latency %+v", h)
	}
	for i := 1; i < len(h.Counts); i++ {
		if h.Counts[i] < h.Counts[i-1] {
			t.Fatalf("counts not cumulative: %v", h.Counts)
		}
	}
	if len(join.Failures) != 2 || join.Failures[FailBadOutput] != 1 || join.Failures[FailInputTooLarge] != 1 {
		t.Fatalf("join failures %v", join.Failures)
	}
	// More calls, higher counts; the figures survive a reload.
	if err := m.Replace(ctx, testplug(t, "p", "v2", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(ctx, "p", abi.HookJoin, in); err != nil {
		t.Fatal(err)
	}
	st2, _ := m.Stats("p")
	for _, hs := range st2.Hooks {
		if hs.Hook == abi.HookJoin && (hs.Latency.Count != h.Count+1 || hs.Latency.Sum <= h.Sum) {
			t.Fatalf("after another call: %+v (was %+v)", hs.Latency, h)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	var c hookCounters
	for _, d := range []time.Duration{0, 10 * time.Microsecond, 10*time.Microsecond + 1, time.Millisecond,
		time.Second, time.Second + 1, time.Minute} {
		c.observe(d)
	}
	hs := c.snapshot(abi.HookJoin)
	want := map[time.Duration]uint64{10 * time.Microsecond: 2, 25 * time.Microsecond: 3, 500 * time.Microsecond: 3,
		time.Millisecond: 4, 250 * time.Millisecond: 4, time.Second: 5}
	for i, b := range hs.Latency.Bounds {
		if w, ok := want[b]; ok && hs.Latency.Counts[i] != w {
			t.Errorf("le %v: %d, want %d", b, hs.Latency.Counts[i], w)
		}
	}
	if hs.Latency.Count != 7 || hs.Latency.Sum != 10*time.Microsecond*2+1+time.Millisecond+2*time.Second+1+time.Minute {
		t.Errorf("count %d sum %v", hs.Latency.Count, hs.Latency.Sum)
	}
	for _, k := range FailureKinds {
		if KindOf(fmt.Errorf("x: %w", &CallError{Kind: failureErr(k)})) != k {
			t.Errorf("kind %s does not round-trip", k)
		}
	}
	if KindOf(nil) != "" {
		t.Error("KindOf(nil)")
	}
}

// failureErr returns the sentinel of kind k (a fresh error for FailOther).
func failureErr(k FailureKind) error {
	for i, e := range failureErrors {
		if FailureKinds[i] == k {
			return e
		}
	}
	return errors.New("something else")
}

func TestRecordDoesNotAllocate(t *testing.T) {
	s := newPluginState("p", Backoff{Threshold: 1 << 30, Min: time.Second, Max: time.Second}, newTestLogger(&logSink{}))
	hi := hookIndex(abi.HookPresence)
	fail := &CallError{Kind: ErrTrap}
	if n := testing.AllocsPerRun(1000, func() {
		s.record(hi, nil, 42*time.Microsecond, true)
		s.record(hi, fail, 3*time.Millisecond, true)
		s.refused(hi, fail)
	}); n != 0 {
		t.Fatalf("recording a call allocates %v times", n)
	}
}
