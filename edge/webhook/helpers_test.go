package webhook

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/whsig"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=" // base64("secret-key-for-tests")

// testLog shows the store's and pipeline's logs with -v.
func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// fastConfig makes retries quick enough for tests.
func fastConfig() Config {
	c := DefaultConfig()
	c.AttemptTimeout = 2 * time.Second
	c.BackoffBase = 5 * time.Millisecond
	c.BackoffMax = 50 * time.Millisecond
	c.PollInterval = 10 * time.Millisecond
	c.SettleInterval = 10 * time.Millisecond
	c.HookBackoff = time.Millisecond
	return c
}

func openStore(t testing.TB, dir string) *FileStore {
	t.Helper()
	s, err := OpenFileStore(dir, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hit is one request a receiver got.
type hit struct {
	ID, Timestamp, Signature string
	Body                     []byte
	Header                   http.Header
	Path                     string
	Ev                       body
}

// body is what the test hook puts in each webhook.
type body struct {
	Event string `json:"event"`
	Kind  string `json:"kind"`
	Room  string `json:"room"`
	Who   string `json:"identity"`
}

// receiver is a real HTTP server on loopback recording what it got;
// status decides each answer (200 when nil).
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hit
	// status returns the status for a request (0: 200); it may block.
	status func(h hit, n int) int
}

func newReceiver(t testing.TB, status func(h hit, n int) int) *receiver {
	rc := &receiver{status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h := hit{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
		Signature: r.Header.Get("webhook-signature"), Body: b, Header: r.Header.Clone(), Path: r.URL.Path}
	_ = json.Unmarshal(b, &h.Ev)
	rc.mu.Lock()
	n := 0
	for _, g := range rc.got {
		if g.ID == h.ID {
			n++
		}
	}
	rc.got = append(rc.got, h)
	status := rc.status
	rc.mu.Unlock()
	code := 200
	if status != nil {
		if c := status(h, n); c != 0 {
			code = c
		}
	}
	w.WriteHeader(code)
}

func (rc *receiver) hits() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.got...)
}

func (rc *receiver) setStatus(f func(h hit, n int) int) {
	rc.mu.Lock()
	rc.status = f
	rc.mu.Unlock()
}

// testHook makes one webhook per event to base+path(ev), ordered by room.
func testHook(base string, path func(core.PresenceEvent) string) Hook {
	return HookFunc(func(_ context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		b, _ := json.Marshal(body{Event: ev.ID, Kind: string(ev.Kind), Room: ev.Room, Who: ev.Identity})
		p := "/hook"
		if path != nil {
			p = path(ev)
		}
		return []core.Webhook{{Room: ev.Room, Event: "participant." + string(ev.Kind), Plugin: "test",
			URL: base + p, Body: b, Secret: testSecret, Headers: map[string]string{"X-Site": "s1", "webhook-id": "forged"}}}, nil
	})
}

// running is a Pipeline's Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t testing.TB, p *Pipeline) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop cancels Run and waits for it.
func (r *running) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

func newPipeline(t testing.TB, cfg Config, s Store, h Hook) *Pipeline {
	t.Helper()
	p, err := New(cfg, s, h, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// presence commits n join events per room, in turn.
func presence(t testing.TB, s *FileStore, rooms []string, n int) {
	t.Helper()
	for i := range n {
		for _, room := range rooms {
			if _, err := s.AppendPresence(context.Background(), core.PresenceEvent{Kind: core.PresenceJoined, Room: room, Identity: fmt.Sprintf("u%03d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// eventually polls cond every 5ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verify checks a hit's signature with the HMAC secret and the keys.
func verify(h hit, secret string, keys ...ed25519.PublicKey) error {
	return whsig.Verify(h.Signature, h.ID, h.Timestamp, h.Body, secret, keys...)
}

// firstArrivals returns, per room, the event ids in order of first arrival.
func firstArrivals(hits []hit) map[string][]string {
	seen := map[string]bool{}
	out := map[string][]string{}
	for _, h := range hits {
		if seen[h.ID] {
			continue
		}
		seen[h.ID] = true
		out[h.Ev.Room] = append(out[h.Ev.Room], h.Ev.Who)
	}
	return out
}
