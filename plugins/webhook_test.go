package plugins

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core/whsig"
)

func TestDirectSinkRetries(t *testing.T) {
	var calls, bad atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/bad") {
			bad.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	s := NewDirectSink(DirectSinkConfig{RetryDelay: 10 * time.Millisecond, Attempts: 3}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for _, path := range []string{"/ok", "/bad"} {
		w := Webhook{Plugin: "p", Request: abi.WebhookRequest{ID: "msg_1", URL: srv.URL + path, Body: []byte(`{}`)}}
		if err := s.Enqueue(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || bad.Load() != 1 || s.Delivered() != 1 || s.Failed() != 1 {
		t.Fatalf("calls %d, bad %d, delivered %d, failed %d", calls.Load(), bad.Load(), s.Delivered(), s.Failed())
	}
	if err := s.Enqueue(ctx, Webhook{}); err != ErrSinkClosed {
		t.Fatalf("enqueue after close: %v", err)
	}
}

func TestDirectSinkFull(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	s := NewDirectSink(DirectSinkConfig{Queue: 1, Workers: 1, Timeout: time.Second, Attempts: 1}, slog.New(slog.DiscardHandler))
	w := Webhook{Request: abi.WebhookRequest{URL: srv.URL, Body: []byte(`{}`)}}
	var full bool
	for range 5 {
		if s.Enqueue(context.Background(), w) == ErrSinkFull {
			full = true
		}
	}
	if !full {
		t.Fatal("the queue never filled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err == nil {
		t.Fatal("close with stuck deliveries returned nil")
	}
}

func TestSign(t *testing.T) {
	body := []byte(`{"a":1}`)
	secret := base64.StdEncoding.EncodeToString([]byte("key"))
	m := hmac.New(sha256.New, []byte("key"))
	m.Write([]byte("msg_1.1700000000." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := Sign("msg_1", "1700000000", body, "whsec_"+secret, nil); got != want {
		t.Fatalf("hmac: %s want %s", got, want)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	got := Sign("msg_1", "1700000000", body, "", priv)
	sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(got, "v1a,"))
	if err != nil || !ed25519.Verify(pub, []byte("msg_1.1700000000."+string(body)), sig) {
		t.Fatalf("ed25519 signature %s does not verify", got)
	}
	if Sign("id", "1", body, "", nil) != "" || Sign("id", "1", body, "") != "" {
		t.Fatal("signature without keys")
	}
	// Several keys (a rotation): one v1a signature each, after the v1.
	pub2, priv2, _ := ed25519.GenerateKey(rand.Reader)
	got = Sign("msg_1", "1700000000", body, "whsec_"+secret, priv, priv2)
	if f := strings.Fields(got); len(f) != 3 || f[0] != want || !strings.HasPrefix(f[1], "v1a,") || !strings.HasPrefix(f[2], "v1a,") {
		t.Fatalf("rotation signature %s", got)
	}
	for _, k := range []ed25519.PublicKey{pub, pub2} {
		if err := whsig.Verify(got, "msg_1", "1700000000", body, "", k); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
}
