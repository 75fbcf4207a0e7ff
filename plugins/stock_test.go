package plugins

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/core/whsig"
)

const devSecret = "stock-test-secret-0123456789"

func stock(t *testing.T, name string, config any) Spec {
	t.Helper()
	cfg, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	s, err := StockSpec(name, "test", goPlugin(t, "stock/"+name), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwt signs a token like jwtauth's tests, for claims devtoken cannot mint.
func jwt(alg string, key any, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, _ := json.Marshal(claims)
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	var sig []byte
	switch k := key.(type) {
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(signed))
		sig = m.Sum(nil)
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(signed))
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestStockJWTAuth(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	m, _ := newManager(t)
	load(t, m, stock(t, "jwtauth", map[string]any{"hs256_secret": devSecret,
		"ed25519_public_keys": []string{base64.StdEncoding.EncodeToString(pub)}}))
	ctx := context.Background()
	now := time.Now()
	valid, err := devtoken.Mint([]byte(devSecret), core.Claims{Identity: "alice", Name: "Alice", Room: "r1",
		Grants: core.Grants{CanPublish: true, CanSubscribe: true}, Metadata: `{"role":"host"}`}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Authenticate(ctx, valid)
	if err != nil || c.Identity != "alice" || c.Room != "r1" || !c.Grants.CanPublish || c.Grants.CanPublishData ||
		c.Metadata != `{"role":"host"}` || c.ExpiresAt.Unix() != now.Add(time.Hour).Unix() {
		t.Fatalf("valid: %+v %v", c, err)
	}
	expired, _ := devtoken.Mint([]byte(devSecret), core.Claims{Identity: "a", Room: "r"}, time.Minute, now.Add(-time.Hour))
	if _, err := m.Authenticate(ctx, expired); !errors.Is(err, core.ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
	forged, _ := devtoken.Mint([]byte("some-other-secret-of-length"), core.Claims{Identity: "a", Room: "r"}, time.Hour, now)
	if _, err := m.Authenticate(ctx, forged); !errors.Is(err, core.ErrInvalidToken) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("forged: %v", err)
	}
	claims := map[string]any{"iss": "parley", "aud": "elsewhere", "sub": "a", "room": "r", "exp": now.Add(time.Hour).Unix()}
	if _, err := m.Authenticate(ctx, jwt("HS256", []byte(devSecret), claims)); !errors.Is(err, core.ErrInvalidToken) ||
		!strings.Contains(err.Error(), "audience") {
		t.Fatalf("wrong audience: %v", err)
	}
	claims["aud"] = "parley"
	claims["sub"] = "eddie"
	c, err = m.Authenticate(ctx, jwt("EdDSA", priv, claims))
	if err != nil || c.Identity != "eddie" || c.Grants != (core.Grants{CanSubscribe: true}) {
		t.Fatalf("eddsa: %+v %v", c, err)
	}
	// A token for the right audience but signed with another Ed25519 key.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := m.Authenticate(ctx, jwt("EdDSA", other, claims)); !errors.Is(err, core.ErrInvalidToken) {
		t.Fatalf("foreign eddsa key: %v", err)
	}
}

func TestStockJWTAuthNeedsTheClock(t *testing.T) {
	m, _ := newManager(t)
	s := stock(t, "jwtauth", map[string]any{"hs256_secret": devSecret})
	s.Capabilities = s.Capabilities[:1] // config only
	if err := m.Load(context.Background(), s); !errors.Is(err, ErrCapabilityNotGranted) ||
		!strings.Contains(err.Error(), "parley_clock_v1.now_unix_nano") {
		t.Fatalf("load without clock: %v", err)
	}
	if err := m.Load(context.Background(), stock(t, "jwtauth", map[string]any{})); !errors.Is(err, ErrInit) ||
		!strings.Contains(err.Error(), "hs256_secret") {
		t.Fatalf("load without keys: %v", err)
	}
}

func TestStockRoomPolicy(t *testing.T) {
	m, _ := newManager(t)
	load(t, m, stock(t, "roompolicy", map[string]any{
		"rooms": []string{"team-*"}, "max_participants": 2,
		"roles": map[string]any{
			"host":        map[string]any{"publish": []string{"audio", "video", "data"}, "max_bitrate": 2_000_000},
			"participant": map[string]any{"publish": []string{"audio"}, "max_bitrate": 64_000},
		},
	}))
	ctx := context.Background()
	claims := func(role string) core.Claims {
		return core.Claims{Identity: "a", Room: "team-a", Grants: core.AllGrants, Metadata: `{"role":"` + role + `"}`}
	}
	d, err := m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "team-a", Participants: 1, Claims: claims("host")})
	if err != nil || !d.Allow || d.MaxBitrate != 2_000_000 {
		t.Fatalf("host join: %+v %v", d, err)
	}
	d, _ = m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "team-a", Participants: 2, Claims: claims("host")})
	if d.Allow || d.Code != core.CodeRoomFull {
		t.Fatalf("full room: %+v", d)
	}
	d, _ = m.Decide(ctx, core.PolicyRequest{Action: core.ActionJoin, Room: "random", Claims: claims("host")})
	if d.Allow || d.Code != core.CodeForbidden || !strings.Contains(d.Reason, "not open") {
		t.Fatalf("closed room: %+v", d)
	}
	video := &core.TrackInfo{Kind: core.KindVideo}
	d, _ = m.Decide(ctx, core.PolicyRequest{Action: core.ActionPublish, Room: "team-a", Claims: claims("participant"), Track: video})
	if d.Allow || d.Code != core.CodeForbidden || d.Reason != `role "participant" may not publish video` {
		t.Fatalf("participant video: %+v", d)
	}
	d, _ = m.Decide(ctx, core.PolicyRequest{Action: core.ActionPublish, Room: "team-a", Claims: claims("host"), Track: video})
	if !d.Allow || d.MaxBitrate != 2_000_000 {
		t.Fatalf("host video: %+v", d)
	}
}

// receiver is an httptest webhook receiver.
type receiver struct {
	mu   sync.Mutex
	got  []*http.Request
	body [][]byte
	srv  *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req)
		r.body = append(r.body, b)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) wait(t *testing.T, n int) ([]*http.Request, [][]byte) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		if len(r.got) >= n {
			defer r.mu.Unlock()
			return r.got, r.body
		}
		r.mu.Unlock()
	}
	t.Fatalf("received %d webhooks, want %d", len(r.got), n)
	return nil, nil
}

func TestStockPresenceWebhook(t *testing.T) {
	a, b := newReceiver(t), newReceiver(t)
	// A key rotation in progress: webhooks carry a signature of each key.
	oldPub, oldKey, _ := ed25519.GenerateKey(rand.Reader)
	newPub, newKey, _ := ed25519.GenerateKey(rand.Reader)
	sink := NewDirectSink(DirectSinkConfig{Timeout: 5 * time.Second, SigningKeys: []ed25519.PrivateKey{newKey, oldKey}},
		slog.New(slog.DiscardHandler))
	defer sink.Close(context.Background())
	m, _ := newManager(t, WithWebhookSink(sink))
	load(t, m, stock(t, "presencewebhook", map[string]any{"targets": []map[string]any{
		{"name": "a", "url": a.srv.URL + "/hook", "sites": []string{"a.example"}, "secret": "whsec_" + base64.StdEncoding.EncodeToString([]byte("topsecret"))},
		{"name": "b", "url": b.srv.URL + "/hook", "sites": []string{"b.example"}, "events": []string{"left", "room.finished"}},
	}}))
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 0)
	m.Presence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "a.example/standup", Identity: "alice", ParticipantID: "PA_1", At: at})
	m.Presence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "b.example/standup", Identity: "bob", ParticipantID: "PA_2", At: at})
	m.Presence(WithClientInfo(ctx, ClientInfo{Host: "b.example"}), core.PresenceEvent{Kind: core.PresenceLeft, Room: "standup",
		Identity: "bob", ParticipantID: "PA_2", At: at, Reason: "leave"})
	m.Presence(ctx, core.PresenceEvent{Kind: core.PresenceRoomFinished, Room: "b.example/standup", At: at, Reason: "closed"})
	reqsA, bodiesA := a.wait(t, 1)
	reqsB, bodiesB := b.wait(t, 2)
	time.Sleep(100 * time.Millisecond) // nothing else may arrive
	if len(reqsA) != 1 || len(reqsB) != 2 {
		t.Fatalf("a got %d, b got %d", len(reqsA), len(reqsB))
	}
	// The direct sink's workers deliver in parallel: b's two may arrive in either order.
	both := string(bodiesB[0]) + "\n" + string(bodiesB[1])
	if !strings.Contains(string(bodiesA[0]), `"participant.joined"`) || !strings.Contains(both, `"type":"participant.left"`) ||
		!strings.Contains(both, `"reason":"leave"`) || !strings.Contains(both, `"type":"room.finished"`) {
		t.Fatalf("bodies %s / %s", bodiesA[0], bodiesB)
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("topsecret"))
	h := reqsA[0].Header
	id, ts, sig := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if want := Sign(id, ts, bodiesA[0], secret, newKey, oldKey); id == "" || sig != want || len(strings.Fields(sig)) != 3 ||
		!strings.HasPrefix(sig, "v1,") {
		t.Fatalf("headers %v, want signature %s", h, want)
	}
	for _, verify := range []struct {
		secret string
		key    ed25519.PublicKey
	}{{secret, nil}, {"", oldPub}, {"", newPub}} {
		if err := whsig.Verify(sig, id, ts, bodiesA[0], verify.secret, verify.key); err != nil {
			t.Fatalf("verify with %+v: %v", verify, err)
		}
	}
	// The rotation ends: only the new key signs.
	sink.SetSigningKeys(newKey)
	m.Presence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "a.example/standup", Identity: "carol", ParticipantID: "PA_3", At: at})
	reqsA, bodiesA = a.wait(t, 2)
	h = reqsA[1].Header
	if err := whsig.Verify(h.Get("webhook-signature"), h.Get("webhook-id"), h.Get("webhook-timestamp"), bodiesA[1], "", oldPub); err == nil ||
		len(strings.Fields(h.Get("webhook-signature"))) != 2 {
		t.Fatalf("retired key still signs: %s", h.Get("webhook-signature"))
	}
	if st, _ := m.Stats("presencewebhook"); st.Webhooks != 4 {
		t.Fatalf("webhooks %d", st.Webhooks)
	}
}

func TestStockPresenceWebhookRejectsBadConfig(t *testing.T) {
	m, _ := newManager(t)
	for _, tc := range []struct {
		target map[string]any
		want   string
	}{
		{map[string]any{"name": "t", "url": "ftp://x.example/hook"}, `url "ftp://x.example/hook": scheme must be http or https`},
		{map[string]any{"name": "t", "url": "https:///hook"}, `url "https:///hook" has no host`},
		{map[string]any{"name": "t"}, `target "t": url is missing`},
		{map[string]any{"name": "t", "url": "https://x.example", "events": []string{"joined", "kicked"}}, `unknown event "kicked"`},
		{map[string]any{"name": "t", "url": "https://x.example", "sites": []string{"[a"}}, `bad pattern "[a"`},
	} {
		err := m.Load(context.Background(), stock(t, "presencewebhook", map[string]any{"targets": []any{tc.target}}))
		if !errors.Is(err, ErrInit) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: load error %v, want %q", tc.target, err, tc.want)
		}
	}
	if len(m.List()) != 0 {
		t.Fatalf("a bad configuration loaded: %v", m.List())
	}
	// Short and dotted event names load.
	load(t, m, stock(t, "presencewebhook", map[string]any{"targets": []any{map[string]any{"url": "https://x.example",
		"events": []string{"joined", "participant.left", "room_started", "room.finished", "track.published", "track_unpublished"}}}}))
}
