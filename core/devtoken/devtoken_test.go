package devtoken

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerifyRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := Mint(secret, core.Claims{Identity: "alice", Room: "demo", Grants: core.AllGrants, Metadata: "m"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Secret: secret, Now: func() time.Time { return now.Add(time.Minute) }}
	c, err := v.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "alice" || c.Room != "demo" || c.Grants != core.AllGrants || c.Metadata != "m" {
		t.Fatalf("claims = %+v", c)
	}
	if !c.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("expiry = %v", c.ExpiresAt)
	}
}

func TestVerifyRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, _ := Mint(secret, core.Claims{Identity: "alice", Room: "demo"}, time.Minute, now)
	other, _ := Mint([]byte("another-secret-of-enough-length"), core.Claims{Identity: "alice", Room: "demo"}, time.Minute, now)
	cases := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"expired", tok, now.Add(2 * time.Minute), core.ErrTokenExpired},
		{"not yet valid", tok, now.Add(-time.Hour), core.ErrInvalidToken},
		{"forged", other, now, core.ErrInvalidToken},
		{"tampered", tok[:len(tok)-2] + "AA", now, core.ErrInvalidToken},
		{"garbage", "not.a.jwt", now, core.ErrInvalidToken},
		{"empty", "", now, core.ErrInvalidToken},
		{"huge", strings.Repeat("a", MaxTokenLength+1), now, core.ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Secret: secret, Now: func() time.Time { return tc.at }}
			_, err := v.Authenticate(context.Background(), tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMintRejectsShortSecret(t *testing.T) {
	if _, err := Mint([]byte("short"), core.Claims{Identity: "a", Room: "r"}, time.Minute, time.Now()); err == nil {
		t.Fatal("short secret accepted")
	}
}

func FuzzVerify(f *testing.F) {
	tok, _ := Mint(secret, core.Claims{Identity: "alice", Room: "demo"}, time.Hour, time.Now())
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("")
	v := &Verifier{Secret: secret}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Authenticate(context.Background(), s)
		if err == nil && (c.Identity == "" || c.Room == "") {
			t.Fatalf("accepted token without identity/room: %q", s)
		}
		if err != nil && core.CodeOf(err) == core.CodeInternal {
			t.Fatalf("untyped error for %q: %v", s, err)
		}
	})
}
