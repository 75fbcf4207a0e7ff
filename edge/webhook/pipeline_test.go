package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// A crash after receivers acknowledged but before the outcomes were
// committed: the next run re-sends those webhooks with the same ids.
func TestCrashRedeliversWithSameIDs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	rc := newReceiver(t, nil)
	presence(t, s, []string{"a", "b"}, 10)
	cfg := fastConfig()
	cfg.SettleInterval = time.Hour // nothing commits before the crash
	cfg.SettleBatch = 1000
	p := newPipeline(t, cfg, s, testHook(rc.srv.URL, nil))
	run := start(t, p)
	eventually(t, 10*time.Second, "20 acknowledged", func() bool { return p.Stats().Delivered == 20 })
	first := map[string]bool{}
	for _, h := range rc.hits() {
		first[h.ID] = true
	}
	s.Close() // the crash: the final settle of Run finds the store gone
	run.stop()
	if p.Stats().SettleErrors == 0 {
		t.Fatal("the settle after the crash did not fail")
	}

	s2 := openStore(t, dir)
	defer s2.Close()
	if n := len(s2.PendingWebhooks()); n != 20 {
		t.Fatalf("after reopen: %d pending, want the 20 unsettled", n)
	}
	p2 := newPipeline(t, fastConfig(), s2, testHook(rc.srv.URL, nil))
	run2 := start(t, p2)
	eventually(t, 10*time.Second, "redelivered and settled", func() bool {
		return p2.Stats().Delivered == 20 && len(s2.PendingWebhooks()) == 0
	})
	run2.stop()
	hits := rc.hits()
	if len(hits) != 40 {
		t.Fatalf("receiver got %d requests, want 40", len(hits))
	}
	for _, h := range hits[20:] {
		if !first[h.ID] {
			t.Fatalf("redelivery with a new id %s", h.ID)
		}
	}
	if p2.Stats().Events != 0 {
		t.Fatal("events were processed twice")
	}
}

func TestClearAndRetryByHost(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	var mode atomic.Value
	mode.Store("gone")
	rc := newReceiver(t, func(hit, int) int {
		switch mode.Load() {
		case "gone":
			return http.StatusGone
		case "down":
			return http.StatusServiceUnavailable
		}
		return 0
	})
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":"):]
	// Two receiver hosts, "127.0.0.1" and "localhost", on one server.
	hook := HookFunc(func(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		host := map[string]string{"a": "127.0.0.1", "b": "localhost"}[ev.Room]
		return testHook("http://"+host+port, nil).Webhooks(ctx, ev)
	})
	presence(t, s, []string{"a", "b"}, 3)
	p := newPipeline(t, fastConfig(), s, hook)
	run := start(t, p)
	eventually(t, 10*time.Second, "all dead (410)", func() bool { return len(s.DeadWebhooks()) == 6 })

	mode.Store("ok")
	if n, err := s.RetryWebhooks(ctx, "localhost"); n != 3 || err != nil {
		t.Fatalf("retry localhost: %d %v", n, err)
	}
	p.Notify()
	eventually(t, 10*time.Second, "localhost's webhooks delivered", func() bool {
		return p.Stats().Delivered == 3 && len(s.PendingWebhooks()) == 0
	})
	if n, err := s.ClearWebhooks(ctx, "127.0.0.1", true); n != 3 || err != nil || len(s.DeadWebhooks()) != 0 {
		t.Fatalf("clear dead of 127.0.0.1: %d %v, %d left", n, err, len(s.DeadWebhooks()))
	}

	// Pending ones cleared while the receiver is down are not sent again.
	mode.Store("down")
	presence(t, s, []string{"a", "b"}, 2)
	p.Notify()
	eventually(t, 10*time.Second, "4 pending, tried", func() bool {
		return len(s.PendingWebhooks()) == 4 && p.Stats().Retried >= 2
	})
	cleared := map[string]int{}
	for _, w := range s.PendingWebhooks() {
		if w.Host == "localhost" {
			cleared[w.ID] = 0
		}
	}
	if n, err := s.ClearWebhooks(ctx, "localhost", false); n != 2 || err != nil || len(cleared) != 2 {
		t.Fatalf("clear pending of localhost: %d %v", n, err)
	}
	tries := func() int {
		n := 0
		for _, h := range rc.hits() {
			if _, ok := cleared[h.ID]; ok {
				n++
			}
		}
		return n
	}
	eventually(t, 10*time.Second, "the cleared ones dropped by the deliverer", func() bool { return p.Stats().Gone == 2 })
	before := tries()
	mode.Store("ok")
	eventually(t, 10*time.Second, "the rest delivered", func() bool { return len(s.PendingWebhooks()) == 0 })
	run.stop()
	if after := tries(); after != before {
		t.Fatalf("cleared webhooks were POSTed %d more times", after-before)
	}
	if st := p.Stats(); st.Delivered != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestKeyRotationSignsWithBoth(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	k1, _ := s.EnsureSigningKey(ctx)
	rc := newReceiver(t, nil)
	p := newPipeline(t, fastConfig(), s, testHook(rc.srv.URL, nil))
	s.OnCommit(p.Notify)
	run := start(t, p)
	defer run.stop()
	deliver := func(who string) hit {
		t.Helper()
		n := len(rc.hits())
		if _, err := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Identity: who}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "delivery of "+who, func() bool { return len(rc.hits()) > n })
		return rc.hits()[n]
	}
	h := deliver("before")
	if got := strings.Count(h.Signature, "v1a,"); got != 1 || verify(h, "", k1.Public()) != nil {
		t.Fatalf("before rotation: %q", h.Signature)
	}
	k2, _ := s.RotateSigningKey(ctx)
	h = deliver("during")
	if got := strings.Count(h.Signature, "v1a,"); got != 2 {
		t.Fatalf("during rotation: %d Ed25519 signatures in %q", got, h.Signature)
	}
	for _, k := range []core.SigningKey{k1, k2} {
		if err := verify(h, "", k.Public()); err != nil {
			t.Fatalf("key %s alone: %v", k.ID, err)
		}
	}
	if err := verify(h, testSecret); err != nil || !strings.HasPrefix(h.Signature, "v1,") {
		t.Fatalf("HMAC: %v (%q)", err, h.Signature)
	}
	if _, err := s.RetireSigningKeys(ctx); err != nil {
		t.Fatal(err)
	}
	h = deliver("after")
	if verify(h, "", k1.Public()) == nil || verify(h, "", k2.Public()) != nil {
		t.Fatalf("after retiring: %q", h.Signature)
	}
}

type transientErr struct{ error }

func (transientErr) Transient() bool { return true }

func TestProcessorHookFailures(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	var mu sync.Mutex
	calls := map[string]int{}
	hook := HookFunc(func(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		mu.Lock()
		calls[ev.Identity]++
		n := calls[ev.Identity]
		mu.Unlock()
		switch {
		case ev.Identity == "flaky" && n < 3:
			return nil, fmt.Errorf("plugin busy: %w", transientErr{errors.New("pool exhausted")})
		case ev.Identity == "down":
			return nil, transientErr{errors.New("always")}
		case ev.Identity == "broken":
			return nil, errors.New("plugin trapped")
		}
		return []core.Webhook{{Room: ev.Room, URL: "http://127.0.0.1:1/x", Body: []byte(`{}`)}}, nil
	})
	ctx := context.Background()
	for _, who := range []string{"flaky", "down", "broken", "fine"} {
		if _, err := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Identity: who}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fastConfig()
	m := newMetrics()
	proc := newProcessor(cfg, s, hook, testLog(t), m, nil)
	if _, err := proc.step(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["flaky"] != 3 || calls["down"] != cfg.HookTries || calls["broken"] != 1 || calls["fine"] != 1 {
		t.Fatalf("calls %v", calls)
	}
	if m.hookFail.Load() != 2 || m.events.Load() != 4 || m.enqueued.Load() != 2 || len(s.PendingWebhooks()) != 2 || s.WebhookCursor() != 4 {
		t.Fatalf("hook failures %d, events %d, enqueued %d, pending %d, cursor %d", m.hookFail.Load(), m.events.Load(), m.enqueued.Load(), len(s.PendingWebhooks()), s.WebhookCursor())
	}
	if p := s.PendingWebhooks(); p[0].ID == "" || p[0].Host != "127.0.0.1" {
		t.Fatalf("id or host not filled in: %+v", p[0])
	}
}

// Two processors racing over one journal (two leaders for a moment): the
// cursor's compare-and-set lets each event's webhooks in exactly once.
func TestProcessorsRaceEnqueueOnce(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	hook := HookFunc(func(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		// A different id per call, so a double enqueue would show.
		return []core.Webhook{{ID: core.NewID("msg_"), Room: ev.Room, URL: "http://127.0.0.1:1/" + ev.Identity, Body: []byte(`{}`)}}, nil
	})
	cfg := fastConfig()
	cfg.JournalBatch = 3
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		proc := newProcessor(cfg, s, hook, testLog(t), newMetrics(), nil)
		wg.Go(func() { proc.Run(ctx) })
	}
	for i := range 200 {
		if _, err := s.AppendPresence(ctx, core.PresenceEvent{Kind: core.PresenceJoined, Room: "r", Identity: fmt.Sprintf("u%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "cursor at 200", func() bool { return s.WebhookCursor() == 200 })
	cancel()
	wg.Wait()
	var urls []string
	for _, w := range s.PendingWebhooks() {
		urls = append(urls, w.URL)
	}
	if len(urls) != 200 || !slices.IsSorted(urls) || len(slices.Compact(urls)) != 200 {
		t.Fatalf("%d webhooks for 200 events (sorted %v)", len(urls), slices.IsSorted(urls))
	}
}

func TestProcessorCountsDropped(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	s.maxJournal = 5
	presence(t, s, []string{"r"}, 8)
	m := newMetrics()
	proc := newProcessor(fastConfig(), s, nil, testLog(t), m, nil)
	if _, err := proc.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.dropd.Load() != 3 || m.events.Load() != 5 || s.WebhookCursor() != 8 {
		t.Fatalf("dropped %d, events %d, cursor %d", m.dropd.Load(), m.events.Load(), s.WebhookCursor())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"timeout":  func(c *Config) { c.AttemptTimeout = 0 },
		"backoff":  func(c *Config) { c.BackoffMax = c.BackoffBase / 2 },
		"age":      func(c *Config) { c.MaxAge = -1 },
		"perhost":  func(c *Config) { c.PerHost = 0 },
		"batch":    func(c *Config) { c.JournalBatch = 0 },
		"poll":     func(c *Config) { c.PollInterval = 0 },
		"hooktry":  func(c *Config) { c.HookTries = 0 },
		"response": func(c *Config) { c.MaxResponse = -1 },
	} {
		c := DefaultConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
		if _, err := New(c, nil, nil, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// Stopping (leadership lost, shutdown) while a POST is under way is no
// outcome: the webhook stays pending, even past its max age.
func TestStopDuringAttemptKeepsPending(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	release := make(chan struct{})
	defer close(release)
	rc := newReceiver(t, func(hit, int) int { <-release; return 0 })
	presence(t, s, []string{"r"}, 1)
	cfg := fastConfig()
	cfg.MaxAge = 50 * time.Millisecond
	p := newPipeline(t, cfg, s, testHook(rc.srv.URL, nil))
	run := start(t, p)
	eventually(t, 10*time.Second, "a POST under way", func() bool { return p.Stats().InFlight == 1 })
	time.Sleep(cfg.MaxAge) // past the max age while in flight
	run.stop()
	if st := p.Stats(); len(s.PendingWebhooks()) != 1 || len(s.DeadWebhooks()) != 0 || st.Retried != 0 || st.Dead != 0 || st.InFlight != 0 {
		t.Fatalf("after stop: pending %d, dead %d, stats %+v", len(s.PendingWebhooks()), len(s.DeadWebhooks()), st)
	}
}
