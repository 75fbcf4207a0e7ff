//go:build !wasip1

package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/sdk/plugin"
)

const secret = "0123456789abcdef-test-secret"

var now = time.Unix(1_800_000_000, 0)

func fixedNow() time.Time { return now }

// mint signs payload with alg ("HS256" with key []byte, "EdDSA" with an
// ed25519.PrivateKey).
func mint(t testing.TB, alg string, key any, payload map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, _ := json.Marshal(payload)
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

func payload(mod func(map[string]any)) map[string]any {
	p := map[string]any{"iss": "parley", "aud": "parley", "sub": "alice", "room": "r1", "name": "Alice",
		"grants": map[string]bool{"can_publish": true, "can_subscribe": true}, "metadata": `{"role":"host"}`,
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(), "iat": now.Unix(), "role": "host"}
	if mod != nil {
		mod(p)
	}
	return p
}

func TestDevTokens(t *testing.T) {
	v, err := NewVerifier(Config{HS256Secret: secret}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := devtoken.Mint([]byte(secret), core.Claims{Identity: "bob", Room: "r2", Name: "Bob",
		Grants: core.Grants{CanSubscribe: true}, Metadata: "m"}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	r := v.Verify(tok)
	want := abi.Claims{Identity: "bob", Name: "Bob", Room: "r2", Metadata: "m",
		Grants: abi.Grants{CanSubscribe: true}, ExpiresAt: now.Add(time.Minute).Unix()}
	if !r.Allow || *r.Claims != want {
		t.Fatalf("got %+v %+v", r, r.Claims)
	}
	expired, _ := devtoken.Mint([]byte(secret), core.Claims{Identity: "bob", Room: "r2"}, time.Minute, now.Add(-2*time.Minute))
	if r := v.Verify(expired); r.Allow || r.Code != abi.CodeTokenExpired {
		t.Fatalf("expired: %+v", r)
	}
	// Within the skew an expired token still passes.
	recent, _ := devtoken.Mint([]byte(secret), core.Claims{Identity: "bob", Room: "r2"}, time.Minute, now.Add(-80*time.Second))
	if r := v.Verify(recent); !r.Allow {
		t.Fatalf("within skew: %+v", r)
	}
	forged, _ := devtoken.Mint([]byte("another-secret-of-16+"), core.Claims{Identity: "bob", Room: "r2"}, time.Minute, now)
	if r := v.Verify(forged); r.Allow || r.Code != abi.CodeInvalidToken || r.Reason != "bad token signature" {
		t.Fatalf("forged: %+v", r)
	}
}

func TestClaimsChecks(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	v, err := NewVerifier(Config{HS256Secret: secret, Ed25519Keys: []string{pemKey}, ClockSkew: "10s"}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(secret)
	cases := []struct {
		name  string
		token string
		code  string // "" = allowed
	}{
		{"hs256", mint(t, "HS256", key, payload(nil)), ""},
		{"eddsa", mint(t, "EdDSA", priv, payload(nil)), ""},
		{"audience array", mint(t, "HS256", key, payload(func(p map[string]any) { p["aud"] = []string{"x", "parley"} })), ""},
		{"wrong audience", mint(t, "HS256", key, payload(func(p map[string]any) { p["aud"] = "other" })), abi.CodeInvalidToken},
		{"wrong issuer", mint(t, "HS256", key, payload(func(p map[string]any) { p["iss"] = "evil" })), abi.CodeInvalidToken},
		{"expired", mint(t, "HS256", key, payload(func(p map[string]any) { p["exp"] = now.Add(-11 * time.Second).Unix() })), abi.CodeTokenExpired},
		{"expired within skew", mint(t, "HS256", key, payload(func(p map[string]any) { p["exp"] = now.Add(-9 * time.Second).Unix() })), ""},
		{"not yet valid", mint(t, "HS256", key, payload(func(p map[string]any) { p["nbf"] = now.Add(11 * time.Second).Unix() })), abi.CodeInvalidToken},
		{"nbf within skew", mint(t, "HS256", key, payload(func(p map[string]any) { p["nbf"] = now.Add(9 * time.Second).Unix() })), ""},
		{"no expiry", mint(t, "HS256", key, payload(func(p map[string]any) { delete(p, "exp") })), abi.CodeInvalidToken},
		{"no room", mint(t, "HS256", key, payload(func(p map[string]any) { delete(p, "room") })), abi.CodeInvalidToken},
		{"alg none", mint(t, "none", nil, payload(nil)), abi.CodeInvalidToken},
		{"eddsa signed by another key", mint(t, "EdDSA", ed25519.NewKeyFromSeed(make([]byte, 32)), payload(nil)), abi.CodeInvalidToken},
		{"hs256 header on an eddsa signature", func() string {
			tok := mint(t, "EdDSA", priv, payload(nil))
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
			return h + tok[len(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))):]
		}(), abi.CodeInvalidToken},
		{"garbage", "not.a.jwt", abi.CodeInvalidToken},
		{"not a jwt", "opaque", abi.CodeInvalidToken},
	}
	for _, tc := range cases {
		r := v.Verify(tc.token)
		if tc.code == "" && (!r.Allow || r.Claims == nil) || tc.code != "" && (r.Allow || r.Code != tc.code) {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
	r := v.Verify(mint(t, "EdDSA", priv, payload(nil)))
	if c := r.Claims; c.Identity != "alice" || c.Role != "host" || !c.Grants.CanPublish || c.Grants.CanPublishData || c.Name != "Alice" {
		t.Fatalf("claims %+v", c)
	}
	r = v.Verify(mint(t, "HS256", key, payload(func(p map[string]any) { delete(p, "grants") })))
	if r.Claims.Grants != (abi.Grants{CanSubscribe: true}) {
		t.Fatalf("default grants %+v", r.Claims.Grants)
	}
}

func TestSkipForeign(t *testing.T) {
	v, _ := NewVerifier(Config{HS256Secret: secret, SkipForeign: true}, fixedNow)
	if r := v.Verify("opaque-api-key"); !r.Skip {
		t.Fatalf("%+v", r)
	}
	if r := v.Verify(mint(t, "HS256", []byte(secret), payload(func(p map[string]any) { p["iss"] = "other" }))); !r.Skip {
		t.Fatalf("%+v", r)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {HS256Secret: "s", ClockSkew: "soon"}, {Ed25519Keys: []string{"short"}}} {
		if _, err := NewVerifier(cfg, fixedNow); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

// TestThroughTheSDK runs the plugin's hooks as the host would.
func TestThroughTheSDK(t *testing.T) {
	h := plugin.NewTestHost([]byte(`{"hs256_secret":"` + secret + `"}`))
	h.SetClock(fixedNow)
	defer plugin.SetTestHost(h)()
	if _, err := plugin.Dispatch(abi.HookInit, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	r, err := plugin.Invoke[abi.AuthResult](abi.HookAuth, abi.AuthRequest{Token: mint(t, "HS256", []byte(secret), payload(nil))})
	if err != nil || !r.Allow || r.Claims.Identity != "alice" {
		t.Fatalf("%+v %v", r, err)
	}
}

func FuzzVerify(f *testing.F) {
	v, _ := NewVerifier(Config{HS256Secret: secret}, fixedNow)
	f.Add(mint(f, "HS256", []byte(secret), payload(nil)))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJIUzI1NiJ9..")
	f.Fuzz(func(t *testing.T, token string) {
		r := v.Verify(token)
		if r.Allow && (r.Claims == nil || r.Claims.Identity == "") {
			t.Fatalf("allowed without identity: %+v", r)
		}
	})
}
