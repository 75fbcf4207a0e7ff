//go:build !wasip1

package plugin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
)

// reset clears every registered handler.
func reset(t *testing.T) {
	t.Helper()
	saved := handlers
	handlers = struct {
		init      func(abi.InitRequest) error
		auth      func(abi.AuthRequest) abi.AuthResult
		join      func(abi.JoinRequest) abi.Decision
		publish   func(abi.PublishRequest) abi.Decision
		subscribe func(abi.SubscribeRequest) abi.Decision
		presence  func(abi.PresenceEvent) error
		raw       map[abi.Hook]func([]byte) ([]byte, error)
	}{}
	t.Cleanup(func() { handlers = saved })
}

func TestTypedHandlers(t *testing.T) {
	reset(t)
	OnJoin(func(req abi.JoinRequest) abi.Decision {
		if req.Participants >= 2 {
			return abi.Deny(abi.CodeRoomFull, "full: "+req.Room)
		}
		return abi.Decision{Allow: true, MaxBitrate: 1000}
	})
	OnAuth(func(req abi.AuthRequest) abi.AuthResult {
		return abi.AuthResult{Allow: true, Claims: &abi.Claims{Identity: req.Token}}
	})
	OnSubscribe(func(req abi.SubscribeRequest) abi.Decision { return abi.Deny("", req.Track.Kind) })
	if got := Registered(); len(got) != 3 {
		t.Fatalf("registered %v", got)
	}
	d, err := Invoke[abi.Decision](abi.HookJoin, abi.JoinRequest{Room: "r", Participants: 2})
	if err != nil || d.Allow || d.Code != abi.CodeRoomFull || d.Reason != "full: r" {
		t.Fatalf("join: %+v %v", d, err)
	}
	d, err = Invoke[abi.Decision](abi.HookJoin, abi.JoinRequest{Room: "r"})
	if err != nil || !d.Allow || d.MaxBitrate != 1000 {
		t.Fatalf("join: %+v %v", d, err)
	}
	a, err := Invoke[abi.AuthResult](abi.HookAuth, abi.AuthRequest{Token: "alice"})
	if err != nil || !a.Allow || a.Claims.Identity != "alice" {
		t.Fatalf("auth: %+v %v", a, err)
	}
	d, err = Invoke[abi.Decision](abi.HookSubscribe, abi.SubscribeRequest{Track: abi.Track{Kind: "video"}})
	if err != nil || d.Reason != "video" {
		t.Fatalf("subscribe: %+v %v", d, err)
	}
	if _, err := Invoke[abi.Decision](abi.HookPublish, abi.PublishRequest{}); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("publish without handler: %v", err)
	}
	if _, err := Dispatch(abi.HookJoin, []byte(`{"room":`)); err == nil {
		t.Fatal("malformed input accepted")
	}
}

func TestInitDeclaresHooks(t *testing.T) {
	reset(t)
	var got abi.InitRequest
	OnInit(func(req abi.InitRequest) error { got = req; return nil })
	OnPresence(func(abi.PresenceEvent) error { return nil })
	res, err := Invoke[abi.InitResult](abi.HookInit, abi.InitRequest{ABI: abi.Version, Plugin: "p"})
	if err != nil || got.Plugin != "p" || len(res.Hooks) != 1 || res.Hooks[0] != abi.HookPresence {
		t.Fatalf("init: %+v %v (saw %+v)", res, err, got)
	}
	OnInit(func(abi.InitRequest) error { return errors.New("bad config") })
	if _, err := Dispatch(abi.HookInit, []byte(`{}`)); err == nil || err.Error() != "bad config" {
		t.Fatalf("init error: %v", err)
	}
}

func TestPanicIsAnError(t *testing.T) {
	reset(t)
	OnPublish(func(abi.PublishRequest) abi.Decision { panic("boom") })
	_, err := Dispatch(abi.HookPublish, []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Fatalf("err = %v", err)
	}
}

func TestRawHandler(t *testing.T) {
	reset(t)
	OnJoin(func(abi.JoinRequest) abi.Decision { return abi.Allow() })
	HandleRaw(abi.HookJoin, func(in []byte) ([]byte, error) { return append([]byte("raw:"), in...), nil })
	out, err := Dispatch(abi.HookJoin, []byte(`x`))
	if err != nil || string(out) != "raw:x" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestTestHostCapabilities(t *testing.T) {
	h := NewTestHost([]byte(`{"limit":3}`))
	defer SetTestHost(h)()
	var cfg struct{ Limit int }
	if err := DecodeConfig(&cfg); err != nil || cfg.Limit != 3 {
		t.Fatalf("config %+v %v", cfg, err)
	}
	Log(abi.LevelWarn, "hello")
	if logs := h.Logs(); len(logs) != 1 || logs[0].Message != "hello" || logs[0].Level != abi.LevelWarn {
		t.Fatalf("logs %+v", logs)
	}
	if _, ok, err := KVGet("k"); ok || err != nil {
		t.Fatalf("missing key: %v %v", ok, err)
	}
	big := strings.Repeat("v", 1000)
	if err := KVSet("k", []byte(big)); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := KVGet("k"); !ok || err != nil || string(v) != big {
		t.Fatalf("get: %d %v %v", len(v), ok, err)
	}
	for want := int64(1); want <= 3; want++ {
		if n, err := KVAdd("n", 1); err != nil || n != want {
			t.Fatalf("add: %d %v", n, err)
		}
	}
	if _, err := KVAdd("k", 1); err == nil {
		t.Fatal("adding to a non-counter succeeded")
	}
	if err := KVDelete("k"); err != nil {
		t.Fatal(err)
	}
	if err := SendWebhook(abi.WebhookRequest{URL: "http://x", Body: json.RawMessage(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	if w := h.Webhooks(); len(w) != 1 || string(w[0].Body) != `{"a":1}` {
		t.Fatalf("webhooks %+v", w)
	}
	at := time.Unix(1700000000, 0)
	h.SetClock(func() time.Time { return at })
	if !Now().Equal(at) {
		t.Fatalf("now %v", Now())
	}
	b := make([]byte, 100)
	if err := RandomRead(b); err != nil || string(b) == string(make([]byte, 100)) {
		t.Fatalf("random %v", err)
	}
}
