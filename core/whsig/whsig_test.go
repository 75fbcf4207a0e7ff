package whsig

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub2, priv2, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	body := []byte(`{"type":"participant.joined"}`)

	h := Sign("msg_1", "1700000000", body, secret, priv, priv2)
	if got := len(strings.Fields(h)); got != 3 {
		t.Fatalf("want 3 signatures, got %d: %q", got, h)
	}
	for name, tc := range map[string]struct {
		secret string
		keys   []ed25519.PublicKey
		want   error
	}{
		"hmac only":        {secret: secret},
		"old key":          {keys: []ed25519.PublicKey{pub}},
		"new key":          {keys: []ed25519.PublicKey{pub2}},
		"wrong key":        {keys: []ed25519.PublicKey{otherPub}, want: ErrMismatch},
		"wrong secret":     {secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("nope")), want: ErrMismatch},
		"nothing to check": {want: ErrMismatch},
	} {
		if err := Verify(h, "msg_1", "1700000000", body, tc.secret, tc.keys...); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
	// Any change of id, timestamp or body breaks every signature.
	for _, c := range []struct{ id, ts, body string }{
		{"msg_2", "1700000000", string(body)},
		{"msg_1", "1700000001", string(body)},
		{"msg_1", "1700000000", `{"type":"participant.left"}`},
	} {
		if err := Verify(h, c.id, c.ts, []byte(c.body), secret, pub, pub2); !errors.Is(err, ErrMismatch) {
			t.Errorf("tampered %+v verified: %v", c, err)
		}
	}
	if err := Verify("", "msg_1", "1", body, secret); !errors.Is(err, ErrNoSignature) {
		t.Errorf("empty header: %v", err)
	}
	if Sign("a", "1", body, "") != "" {
		t.Error("no secret and no key must give no signature")
	}
}

func TestRawSecret(t *testing.T) {
	h := Sign("id", "5", []byte("x"), "plain-secret")
	if err := Verify(h, "id", "5", []byte("x"), "plain-secret"); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.Add(Sign("id", "1", []byte("b"), "s", priv), "id", "1", []byte("b"))
	f.Add("v1a,!!! v1,abc", "x", "y", []byte{})
	f.Fuzz(func(t *testing.T, header, id, ts string, body []byte) {
		_ = Verify(header, id, ts, body, "s", priv.Public().(ed25519.PublicKey))
	})
}
