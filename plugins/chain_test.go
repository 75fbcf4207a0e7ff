package plugins

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

func join(room string) core.PolicyRequest {
	return core.PolicyRequest{Action: core.ActionJoin, Room: room, ParticipantID: "PA_x",
		Claims: core.Claims{Identity: "alice", Room: room, Grants: core.AllGrants}}
}

func TestWATPolicyFromTheDocs(t *testing.T) {
	m, logs := newManager(t)
	load(t, m, Spec{Name: "wat", Version: "1", Module: watPlugin(t, "policy"), Capabilities: []abi.Capability{abi.CapLog}})
	ctx := context.Background()
	d, err := m.Decide(ctx, join("lobby"))
	if err != nil || !d.Allow || d.MaxBitrate != 300000 {
		t.Fatalf("lobby: %+v %v", d, err)
	}
	d, err = m.Decide(ctx, join("office"))
	if err != nil || d.Allow || d.Code != core.CodeForbidden || d.Reason != "wat: only the lobby is open" {
		t.Fatalf("office: %+v %v", d, err)
	}
	if info := m.List(); len(info) != 1 || len(info[0].Hooks) != 1 || info[0].Hooks[0] != abi.HookJoin {
		t.Fatalf("info %+v", info)
	}
	if !logs.contains("wat plugin: join") {
		t.Fatal("the WAT plugin's log line is missing")
	}
	// Publish is not served: no plugin means allow.
	if d, err := m.Decide(ctx, core.PolicyRequest{Action: core.ActionPublish, Room: "office"}); err != nil || !d.Allow {
		t.Fatalf("publish: %+v %v", d, err)
	}
}

func TestChainOrderAndFirstDeny(t *testing.T) {
	m, _ := newManager(t)
	a := testplug(t, "a", "va", nil)
	a.Order = 1
	b := testplug(t, "b", "vb", nil)
	b.Order = 2
	w := Spec{Name: "wat", Module: watPlugin(t, "policy"), Capabilities: []abi.Capability{abi.CapLog}, Order: 3}
	load(t, m, b)
	load(t, m, w)
	load(t, m, a)
	ctx := context.Background()
	in := abi.JoinRequest{Room: "lobby", Claims: abi.Claims{Identity: "alice"}}
	v, err := m.Evaluate(ctx, abi.HookJoin, in)
	if err != nil || !v.Decision.Allow || len(v.Steps) != 3 {
		t.Fatalf("verdict %+v %v", v, err)
	}
	for i, want := range []string{"a", "b", "wat"} {
		if v.Steps[i].Plugin != want {
			t.Fatalf("step %d is %s, want %s", i, v.Steps[i].Plugin, want)
		}
	}
	// The last metadata wins, the lowest bitrate wins.
	if *v.Decision.Metadata != "vb" || v.Decision.MaxBitrate != 300000 {
		t.Fatalf("merged %+v", v.Decision)
	}
	in.Room = "deny-me"
	v, err = m.Evaluate(ctx, abi.HookJoin, in)
	if err != nil || v.Decision.Allow || len(v.Steps) != 1 || v.Decision.Reason != "testplug denies deny-me" {
		t.Fatalf("verdict %+v %v", v, err)
	}
	in.Room = "office" // a and b allow, the WAT plugin denies
	d, err := m.Decide(ctx, join("office"))
	if err != nil || d.Allow || d.Reason != "wat: only the lobby is open" {
		t.Fatalf("decision %+v %v", d, err)
	}
	if st, _ := m.Stats("wat"); st.Denials != 1 {
		t.Fatalf("wat denials %d", st.Denials)
	}
}

func TestPublishAndSubscribe(t *testing.T) {
	m, _ := newManager(t)
	load(t, m, testplug(t, "p", "v1", nil))
	ctx := context.Background()
	req := core.PolicyRequest{Action: core.ActionPublish, Room: "novideo-1", Claims: core.Claims{Identity: "a"},
		Track: &core.TrackInfo{Kind: core.KindVideo}}
	d, err := m.Decide(ctx, req)
	if err != nil || d.Allow || d.Reason != "testplug: no video here" {
		t.Fatalf("video: %+v %v", d, err)
	}
	req.Track.Kind = core.KindAudio
	if d, err := m.Decide(ctx, req); err != nil || !d.Allow || d.MaxBitrate != 500_000 {
		t.Fatalf("audio: %+v %v", d, err)
	}
	req.Action = core.ActionSubscribe
	if d, err := m.Decide(ctx, req); err != nil || !d.Allow {
		t.Fatalf("subscribe: %+v %v", d, err)
	}
}

func TestAuthChain(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	if _, err := m.Authenticate(ctx, "x"); core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("no auth plugin: %v", err)
	}
	a := testplug(t, "a", "va", map[string]any{"auth_prefix": "a:"})
	b := testplug(t, "b", "vb", map[string]any{"auth_prefix": "b:"})
	b.Order = 1
	load(t, m, a)
	load(t, m, b)
	c, err := m.Authenticate(ctx, "a:alice")
	if err != nil || c.Identity != "alice" || c.Metadata != "va" || c.Room != "room-alice" || !c.Grants.CanSubscribe || c.Grants.CanPublish {
		t.Fatalf("a: %+v %v", c, err)
	}
	c, err = m.Authenticate(ctx, "b:bob")
	if err != nil || c.Identity != "bob" || c.Metadata != "vb" {
		t.Fatalf("b: %+v %v", c, err)
	}
	_, err = m.Authenticate(ctx, "nobody")
	if !errors.Is(err, core.ErrInvalidToken) {
		t.Fatalf("unknown token: %v", err)
	}
	_, err = m.Authenticate(ctx, "revoked")
	if !errors.Is(err, core.ErrTokenExpired) || err.(*core.Error).Message != "testplug: token revoked" {
		t.Fatalf("revoked: %v", err)
	}
}

func TestPresenceFailsOpen(t *testing.T) {
	sink := &recordingSink{}
	m, logs := newManager(t, WithWebhookSink(sink))
	failing := testplug(t, "failing", "v1", map[string]any{"presence_fail": true})
	sending := testplug(t, "sending", "v1", map[string]any{"webhook_url": "https://example.test/hook"})
	sending.Order = 1
	load(t, m, failing)
	load(t, m, sending)
	ev := core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Identity: "alice", ParticipantID: "PA_1", At: time.Unix(1700000000, 0)}
	m.Presence(context.Background(), ev)
	m.Presence(context.Background(), ev) // the same event again: the same webhook id
	got := sink.all()
	if len(got) != 2 || got[0].Request.URL != "https://example.test/hook" || got[0].Plugin != "sending" ||
		got[0].Request.ID == "" || got[0].Request.ID != got[1].Request.ID {
		t.Fatalf("webhooks %+v", got)
	}
	if !logs.contains("presence fails as configured") {
		t.Fatal("the failing presence plugin was not logged")
	}
	if st, _ := m.Stats("failing"); st.PluginErrors != 2 {
		t.Fatalf("failing stats %+v", st)
	}
}

func TestWebhookAllowList(t *testing.T) {
	sink := &recordingSink{}
	m, logs := newManager(t, WithWebhookSink(sink))
	s := testplug(t, "p", "v1", map[string]any{"webhook_url": "https://evil.test/x"})
	s.WebhookAllow = []string{"https://good.test/"}
	load(t, m, s)
	m.Presence(context.Background(), core.PresenceEvent{Kind: core.PresenceLeft, Room: "r"})
	if len(sink.all()) != 0 || !logs.contains("webhook_allow") {
		t.Fatalf("a webhook outside the allow list went out: %+v", sink.all())
	}
}

func TestKVAndLogCapabilities(t *testing.T) {
	m, logs := newManager(t)
	load(t, m, testplug(t, "p", "v1", nil))
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		d, err := m.Decide(ctx, join("counter"))
		if err != nil || d.Metadata != string(rune('0'+want)) {
			t.Fatalf("counter %d: %+v %v", want, d, err)
		}
	}
	// The store outlives a reload.
	if err := m.Replace(ctx, testplug(t, "p", "v2", nil)); err != nil {
		t.Fatal(err)
	}
	if d, err := m.Decide(ctx, join("counter")); err != nil || d.Metadata != "4" {
		t.Fatalf("after reload: %+v %v", d, err)
	}
	if _, err := m.Decide(ctx, join("log")); err != nil || !logs.contains("testplug: join of alice") {
		t.Fatalf("log: %v", err)
	}
}

func TestLogRateLimit(t *testing.T) {
	m, _ := newManager(t)
	s := testplug(t, "p", "v1", nil)
	s.Limits.LogRate = 1 // burst 2
	load(t, m, s)
	for range 5 {
		if _, err := m.Decide(context.Background(), join("log")); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := m.Stats("p")
	if st.LogLines != 2 || st.LogsDropped != 3 {
		t.Fatalf("lines %d dropped %d", st.LogLines, st.LogsDropped)
	}
}
