package webhook

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/edge"
	"go.uber.org/goleak"
)

// pkiKeys fetches the public keys the way a receiver would: GET /pki.
func pkiKeys(t *testing.T, s *FileStore) []ed25519.PublicKey {
	t.Helper()
	srv := httptest.NewServer(edge.PKIHandler(s))
	defer srv.Close()
	rsp, err := http.Get(srv.URL + "/pki")
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	var doc edge.PKI
	if err := json.NewDecoder(rsp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var keys []ed25519.PublicKey
	for _, k := range doc.Keys {
		raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, raw)
	}
	return keys
}

func TestEveryEventDeliveredOnceSigned(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	if _, err := s.EnsureSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, nil)
	rooms := []string{"a", "b", "c"}
	presence(t, s, rooms, 20)

	ignore := goleak.IgnoreCurrent()
	p := newPipeline(t, fastConfig(), s, testHook(rc.srv.URL, nil))
	s.OnCommit(p.Notify)
	run := start(t, p)
	presence(t, s, []string{"d"}, 5) // while running
	eventually(t, 10*time.Second, "65 webhooks acknowledged and settled", func() bool {
		st := p.Stats()
		return st.Delivered == 65 && len(s.PendingWebhooks()) == 0
	})
	run.stop()
	goleak.VerifyNone(t, ignore)

	hits := rc.hits()
	if len(hits) != 65 {
		t.Fatalf("receiver got %d requests, want 65 (one per event)", len(hits))
	}
	keys := pkiKeys(t, s)
	seen := map[string]bool{}
	for _, h := range hits {
		if seen[h.ID] {
			t.Fatalf("webhook %s arrived twice", h.ID)
		}
		seen[h.ID] = true
		if err := verify(h, "", keys...); err != nil {
			t.Fatalf("Ed25519 signature of %s against /pki: %v", h.ID, err)
		}
		if err := verify(h, testSecret); err != nil {
			t.Fatalf("HMAC signature of %s: %v", h.ID, err)
		}
		if h.Header.Get("Content-Type") != "application/json" || h.Header.Get("X-Site") != "s1" ||
			!strings.HasPrefix(h.Header.Get("User-Agent"), "Parley") || !strings.HasPrefix(h.ID, "msg_") {
			t.Fatalf("headers %v", h.Header)
		}
	}
	for room, who := range firstArrivals(hits) {
		if !slices.IsSorted(who) {
			t.Fatalf("room %s out of order: %v", room, who)
		}
	}
	st := p.Stats()
	if st.Events != 65 || st.Enqueued != 65 || st.Pending != 0 || st.InFlight != 0 || st.Latency.Count != 65 || st.Dead != 0 || st.Retried != 0 {
		t.Fatalf("stats %+v", st)
	}
	if q := st.Latency.Quantile(0.99); q <= 0 || q > 10 {
		t.Fatalf("p99 latency %v", q)
	}
}

func TestReceiverDownThenUp(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	var down atomic.Bool
	down.Store(true)
	// Room "a" goes to a receiver that answers 503 while down; room "b"
	// to one that is always up; room "c" to an address nothing listens
	// on until later (connection refused).
	rcA := newReceiver(t, func(hit, int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	rcB := newReceiver(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrC := ln.Addr().String()
	ln.Close()
	hook := HookFunc(func(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		base := map[string]string{"a": rcA.srv.URL, "b": rcB.srv.URL, "c": "http://" + addrC}[ev.Room]
		return testHook(base, nil).Webhooks(ctx, ev)
	})
	presence(t, s, []string{"a", "b", "c"}, 15)
	p := newPipeline(t, fastConfig(), s, hook)
	run := start(t, p)

	eventually(t, 10*time.Second, "room b delivered while a and c are down", func() bool {
		st := p.Stats()
		return st.Delivered == 15 && st.Pending == 30
	})
	if st := p.Stats(); st.Delivered != 15 || st.Retried == 0 || st.Pending != 30 {
		t.Fatalf("while down: stats %+v", st)
	}
	if got := firstArrivals(rcA.hits())["a"]; len(got) != 1 {
		t.Fatalf("room a: %d distinct webhooks tried while its head fails, want only the head", len(got))
	}

	// Up again: c's address starts listening, a's receiver answers 200.
	lnC, err := net.Listen("tcp", addrC)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addrC, err)
	}
	rcC := &receiver{}
	srvC := &http.Server{Handler: http.HandlerFunc(rcC.serve)}
	go srvC.Serve(lnC)
	defer srvC.Close()
	down.Store(false)
	eventually(t, 10*time.Second, "rooms a and c delivered once up", func() bool {
		return len(firstArrivals(rcA.hits())["a"]) == 15 && len(firstArrivals(rcC.hits())["c"]) == 15 && len(s.PendingWebhooks()) == 0
	})
	run.stop()
	for _, rc := range []*receiver{rcA, rcB, rcC} {
		for room, who := range firstArrivals(rc.hits()) {
			if !slices.IsSorted(who) || len(who) != 15 {
				t.Fatalf("room %s: %v", room, who)
			}
		}
	}
	if st := p.Stats(); st.Delivered != 45 || st.Dead != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStatusHandling(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	cfg := fastConfig()
	cfg.AttemptTimeout = 200 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	rc := newReceiver(t, func(h hit, n int) int {
		switch h.Path {
		case "/400":
			return 400
		case "/404":
			return 404
		case "/500", "/408", "/429", "/302":
			if n < 2 {
				c := map[string]int{"/500": 500, "/408": 408, "/429": 429, "/302": 302}[h.Path]
				return c
			}
		case "/slow":
			if n == 0 {
				select {
				case <-release:
				case <-time.After(2 * time.Second):
				}
			}
		}
		return 0
	})
	rc.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/429" {
			w.Header().Set("Retry-After", "1") // capped by BackoffMax (50ms)
		}
		if r.URL.Path == "/302" {
			w.Header().Set("Location", "/elsewhere")
		}
		rc.serve(w, r)
	})
	paths := []string{"/400", "/404", "/500", "/408", "/429", "/slow", "/302"}
	hook := testHook(rc.srv.URL, func(ev core.PresenceEvent) string { return ev.Room })
	for _, path := range paths {
		presence(t, s, []string{path}, 1)
	}
	p := newPipeline(t, cfg, s, hook)
	run := start(t, p)
	eventually(t, 10*time.Second, "every webhook settled", func() bool {
		return p.Stats().Events == uint64(len(paths)) && len(s.PendingWebhooks()) == 0
	})
	run.stop()

	count := map[string]int{}
	for _, h := range rc.hits() {
		count[h.Path]++
	}
	want := map[string]int{"/400": 1, "/404": 1, "/500": 3, "/408": 3, "/429": 3, "/slow": 2, "/302": 3}
	for path, n := range want {
		if count[path] != n {
			t.Errorf("%s: %d attempts, want %d", path, count[path], n)
		}
	}
	if count["/elsewhere"] != 0 {
		t.Error("a redirect was followed")
	}
	dead := s.DeadWebhooks()
	if len(dead) != 2 {
		t.Fatalf("dead: %+v", dead)
	}
	for _, w := range dead {
		if w.Attempts != 1 || !strings.Contains(w.LastError, "HTTP 4") || w.Died.IsZero() {
			t.Fatalf("dead webhook %+v", w)
		}
	}
	if st := p.Stats(); st.Delivered != 5 || st.Dead != 2 || st.Retried != 9 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxAgeDeadLetters(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	cfg := fastConfig()
	cfg.MaxAge = 300 * time.Millisecond
	rc := newReceiver(t, func(hit, int) int { return 500 })
	presence(t, s, []string{"a", "b"}, 2)
	p := newPipeline(t, cfg, s, testHook(rc.srv.URL, nil))
	run := start(t, p)
	eventually(t, 10*time.Second, "all dead", func() bool { return len(s.DeadWebhooks()) == 4 })
	run.stop()
	retried := 0
	for _, w := range s.DeadWebhooks() {
		if w.Attempts > 1 {
			retried++
		}
		if w.Attempts < 1 || !strings.Contains(w.LastError, "max age") || !strings.Contains(w.LastError, "HTTP 500") {
			t.Fatalf("dead %+v", w)
		}
		if age := w.Died.Sub(w.Enqueued); age > cfg.MaxAge+time.Second {
			t.Fatalf("died %s after enqueue", age)
		}
	}
	if retried == 0 {
		t.Fatal("no webhook was retried before its max age")
	}
	if len(s.PendingWebhooks()) != 0 || p.Stats().Dead != 4 {
		t.Fatalf("pending %d, stats %+v", len(s.PendingWebhooks()), p.Stats())
	}
}

// Webhooks without a room go out in parallel, up to PerHost per receiver
// host and Global overall.
func TestConcurrencyLimits(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	var cur, peak atomic.Int32
	gate := make(chan struct{})
	rc := newReceiver(t, func(hit, int) int {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-gate
		cur.Add(-1)
		return 0
	})
	// Registered after the receiver, so it runs before the receiver's
	// Close: a failing check must not leave handlers blocked on the gate.
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	t.Cleanup(release)
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":"):]
	hook := HookFunc(func(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		host := map[string]string{"a": "127.0.0.1", "b": "localhost"}[ev.Room]
		whs, err := testHook("http://"+host+port, nil).Webhooks(ctx, ev)
		whs[0].Room = "" // independent
		return whs, err
	})
	presence(t, s, []string{"a"}, 10)
	cfg := fastConfig()
	cfg.PerHost, cfg.Global = 3, 5
	// Handlers hold requests until the gate opens; a timed-out attempt
	// would be retried while its handler still counts as concurrent.
	cfg.AttemptTimeout = time.Minute
	p := newPipeline(t, cfg, s, hook)
	run := start(t, p)
	eventually(t, 10*time.Second, "3 in flight to one host", func() bool { return p.Stats().InFlight == 3 && peak.Load() == 3 })
	if n := p.Stats().InFlight; n != 3 {
		t.Fatalf("%d in flight to one host, want PerHost (3)", n)
	}
	presence(t, s, []string{"b"}, 10)
	p.Notify()
	// In flight counts requests sent; the receiver counts them as they
	// arrive, a moment later: wait for both.
	eventually(t, 10*time.Second, "5 in flight to two hosts", func() bool { return p.Stats().InFlight == 5 && peak.Load() == 5 })
	if n := p.Stats().InFlight; n != 5 {
		t.Fatalf("%d in flight to two hosts, want Global (5)", n)
	}
	release()
	eventually(t, 10*time.Second, "all delivered", func() bool { return p.Stats().Delivered == 20 })
	run.stop()
	if peak.Load() != 5 {
		t.Fatalf("peak %d concurrent requests, want 5 (Global)", peak.Load())
	}
}
