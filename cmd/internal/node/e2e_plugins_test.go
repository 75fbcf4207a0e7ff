package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/sdk/client"
)

const pluginSecret = "plugin-test-secret-0123456789abcdef"

// pluginNode starts a node whose plugin directory holds the given plugins.
func pluginNode(t *testing.T, set map[string]string) *node.Node {
	t.Helper()
	dir := pluginDir(t, set)
	return newNode(t, func(c *node.Config) {
		c.PluginDir = dir
		c.TokenSecret = pluginSecret
		c.Plugins.CacheDir = wazeroCache
		// The race detector and parallel test packages on 2 cores make a
		// call 100x slower than in production; the deadline is not under test.
		c.Plugins.Defaults.CallTimeout = 5 * time.Second
	})
}

func mint(t *testing.T, c core.Claims, ttl time.Duration, at time.Time, secret string) string {
	t.Helper()
	tok, err := devtoken.Mint([]byte(secret), c, ttl, at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dialToken(t *testing.T, n *node.Node, tok string) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.SignalURL(), tok, client.WithLoopback())
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestStockJWTAuthThroughSignaling: with the stock jwtauth plugin loaded,
// parley-minted tokens join, expired and forged ones are refused with
// their codes, and the built-in verifier is no longer consulted.
func TestStockJWTAuthThroughSignaling(t *testing.T) {
	n := pluginNode(t, map[string]string{"jwtauth": ""})
	if len(n.Plugins().List()) != 1 {
		t.Fatalf("plugins loaded: %+v", n.Plugins().List())
	}
	now := time.Now()
	good := mint(t, core.Claims{Identity: "ann", Room: "auth", Grants: core.AllGrants}, time.Hour, now, pluginSecret)
	if _, err := dialToken(t, n, good); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	expired := mint(t, core.Claims{Identity: "old", Room: "auth"}, time.Minute, now.Add(-time.Hour), pluginSecret)
	if _, err := dialToken(t, n, expired); !errors.Is(err, core.ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
	forged := mint(t, core.Claims{Identity: "eve", Room: "auth"}, time.Hour, now, "someone-elses-secret-0123456789")
	if _, err := dialToken(t, n, forged); !errors.Is(err, core.ErrInvalidToken) {
		t.Fatalf("forged token: %v", err)
	}
	st, _ := n.Plugins().Stats("jwtauth")
	if st.Calls < 3 || st.Denials < 2 {
		t.Fatalf("the plugin did not decide: %+v", st)
	}
}

// TestStockRoomPolicyThroughSignaling enforces roompolicy's room patterns,
// participant cap and per-role publish rights on real joins.
func TestStockRoomPolicyThroughSignaling(t *testing.T) {
	n := pluginNode(t, map[string]string{"roompolicy": `{"config": {
		"rooms": ["team-*"], "max_participants": 2, "role_metadata_key": "role", "default_role": "participant",
		"roles": {"participant": {"publish": ["audio", "video", "data"]}, "viewer": {"publish": []}}}}`})
	tok := func(room, id, md string) string {
		return mint(t, core.Claims{Identity: id, Room: room, Grants: core.AllGrants, Metadata: md}, time.Hour, time.Now(), pluginSecret)
	}
	var ce *core.Error
	if _, err := dialToken(t, n, tok("secret-room", "a", "")); !errors.As(err, &ce) || ce.Code != core.CodeForbidden {
		t.Fatalf("room outside the patterns: %v", err)
	}
	viewer, err := dialToken(t, n, tok("team-1", "v", `{"role":"viewer"}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := viewer.PublishRTP(ctx, webrtc.MimeTypeOpus); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("viewer publishing audio: %v", err)
	}
	p, err := dialToken(t, n, tok("team-1", "p", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PublishRTP(ctx, webrtc.MimeTypeOpus); err != nil {
		t.Fatalf("participant publishing audio: %v", err)
	}
	if _, err := dialToken(t, n, tok("team-1", "third", "")); !errors.As(err, &ce) || ce.Code != core.CodeRoomFull {
		t.Fatalf("third participant: %v", err)
	}
}

// webhookReceiver records presence webhooks.
type webhookReceiver struct {
	mu   sync.Mutex
	got  []map[string]any
	hdrs []http.Header
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	w.mu.Lock()
	w.got = append(w.got, m)
	w.hdrs = append(w.hdrs, r.Header.Clone())
	w.mu.Unlock()
}

func (w *webhookReceiver) events() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.got {
		d, _ := m["data"].(map[string]any)
		out = append(out, fmt.Sprint(m["type"], " ", d["identity"], " ", d["room"]))
	}
	return out
}

// TestStockPresenceWebhookThroughSignaling: joins and leaves reach a real
// receiver as webhooks, filtered by site.
func TestStockPresenceWebhookThroughSignaling(t *testing.T) {
	acme, other := &webhookReceiver{}, &webhookReceiver{}
	as, os2 := httptest.NewServer(acme), httptest.NewServer(other)
	defer as.Close()
	defer os2.Close()
	n := pluginNode(t, map[string]string{"presencewebhook": fmt.Sprintf(`{"config": {"targets": [
		{"name": "acme", "url": %q, "sites": ["acme"]},
		{"name": "other", "url": %q, "sites": ["other"], "events": ["left"]}]}}`, as.URL+"/hook", os2.URL+"/hook")})
	tok := mint(t, core.Claims{Identity: "zoe", Room: "acme/lobby", Grants: core.AllGrants}, time.Hour, time.Now(), pluginSecret)
	c, err := dialToken(t, n, tok)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	// Room and track events (room_started, ...) come too; this test is
	// about the participant's.
	joinedLeft := func() []string {
		var out []string
		for _, e := range acme.events() {
			if strings.Contains(e, "joined") || strings.Contains(e, "left") {
				out = append(out, e)
			}
		}
		return out
	}
	eventually(t, 10*time.Second, "joined and left webhooks at the acme receiver", func() bool { return len(joinedLeft()) >= 2 })
	ev := joinedLeft()
	if len(ev) != 2 || !strings.Contains(ev[0], "zoe acme/lobby") || !strings.Contains(ev[0], "joined") || !strings.Contains(ev[1], "left") {
		t.Fatalf("acme got %q", ev)
	}
	if h := acme.hdrs[0]; h.Get("webhook-id") == "" || h.Get("webhook-timestamp") == "" {
		t.Fatalf("standard webhook headers missing: %v", h)
	}
	if got := other.events(); len(got) != 0 {
		t.Fatalf("the other site's target got %q", got)
	}
}

// TestHostilePluginDuringCall loads a misbehaving join plugin at run time
// while a call runs: joins that make it loop or blow its memory are denied
// with a clear error, ordinary joins work, the call keeps flowing, and
// unloading restores the old behaviour.
func TestHostilePluginDuringCall(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Plugins.CacheDir = wazeroCache; c.PluginDir = "none" })
	call := startCall(t, n, "calm")
	module, err := os.ReadFile(pluginWasm(t, "testplug"))
	if err != nil {
		t.Fatal(err)
	}
	lim := plugins.Limits{CallTimeout: 300 * time.Millisecond, MemoryPages: 512}
	ctx := context.Background()
	if err := n.Plugins().Load(ctx, plugins.Spec{Name: "testplug", Module: module, Limits: lim,
		Capabilities: []abi.Capability{abi.CapLog, abi.CapConfig, abi.CapKV, abi.CapWebhook, abi.CapClock, abi.CapRandom}, Config: json.RawMessage(`{"version":"v1"}`)}); err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"loop", "bomb", "panic", "garbage", "huge"} {
		start := time.Now()
		err := dialErr(t, n, room, "victim")
		if !errors.Is(err, &core.Error{Code: core.CodeUnavailable}) {
			t.Fatalf("join of room %q under a hostile plugin: %v", room, err)
		}
		t.Logf("room %q: denied in %s: %v", room, time.Since(start).Round(time.Millisecond), err)
		if strings.Contains(err.Error(), "goroutine") || !strings.Contains(err.Error(), "testplug is unavailable") {
			t.Fatalf("client error should name the plugin and hide its internals: %v", err)
		}
		call.checkFlowing(t)
	}
	if err := dialErr(t, n, "fine", "ok"); err != nil {
		t.Fatalf("ordinary join with the plugin loaded: %v", err)
	}
	st, _ := n.Plugins().Stats("testplug")
	if st.Timeouts == 0 || st.Failures < 5 {
		t.Fatalf("failures not counted: %+v", st)
	}
	// The same failures reach /metrics, by kind (a dashboard graphs them).
	if v := metric(t, n, "parley_plugin_call_failures_total", "plugin", "testplug", "hook", "join", "kind", "timeout"); v < 1 {
		t.Errorf("parley_plugin_call_failures_total{kind=timeout} = %v, want the loop's timeout", v)
	}
	if err := n.Plugins().Unload(ctx, "testplug"); err != nil {
		t.Fatal(err)
	}
	if err := dialErr(t, n, "loop", "after"); err != nil {
		t.Fatalf("join after unloading: %v", err)
	}
	call.checkFlowing(t)
}
