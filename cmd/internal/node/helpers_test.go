package node_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core/protocol"
)

// newNode starts a whole node on free ports in a temp data dir and stops it
// when the test ends.
func newNode(t testing.TB, mutate func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.HTTPAddr = "127.0.0.1:0"
	cfg.HTTP.WebTransportAddr = "127.0.0.1:0"
	cfg.Media.MediaPort = 0
	cfg.Media.IncludeLoopback = true
	cfg.Dev = true
	if mutate != nil {
		mutate(&cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	n, err := node.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}

// eventually polls cond every 10ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawWS is a bare WebSocket speaking the protocol by hand, for bad input.
type rawWS struct {
	t  testing.TB
	ws *websocket.Conn
}

func dialRaw(t testing.TB, url string) *rawWS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &rawWS{t: t, ws: ws}
}

func (r *rawWS) sendRaw(b []byte) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ws.Write(ctx, websocket.MessageText, b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawWS) request(id, typ string, data any) {
	r.t.Helper()
	b, err := protocol.Request(id, typ, data)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendRaw(b)
}

// next reads the next message; ok is false when the connection closed.
func (r *rawWS) next() (protocol.Message, bool) {
	r.t.Helper()
	return r.nextBefore(time.Now().Add(5 * time.Second))
}

// nextBefore is next with a deadline.
func (r *rawWS) nextBefore(deadline time.Time) (protocol.Message, bool) {
	r.t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, b, err := r.ws.Read(ctx)
	if err != nil {
		return protocol.Message{}, false
	}
	m, err := protocol.Decode(b)
	if err != nil {
		r.t.Fatalf("server sent undecodable %s: %v", b, err)
	}
	return m, true
}

// response skips events until the response with id arrives.
func (r *rawWS) response(id string) protocol.Message {
	r.t.Helper()
	for {
		m, ok := r.next()
		if !ok {
			r.t.Fatalf("connection closed while waiting for response %q", id)
		}
		if m.IsResponse() && m.ID == id {
			return m
		}
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
