package plugins

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
)

// logSink records log lines for assertions.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	s.mu.Unlock()
	return nil
}

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// recordingSink is a WebhookSink that keeps what it gets.
type recordingSink struct {
	mu       sync.Mutex
	webhooks []Webhook
}

func (s *recordingSink) Enqueue(_ context.Context, w Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhooks = append(s.webhooks, w)
	return nil
}

func (s *recordingSink) all() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Webhook(nil), s.webhooks...)
}

// testLimits are small limits for tests, with deadlines generous enough
// for a loaded machine running the race detector.
func testLimits() Limits {
	return Limits{CallTimeout: 2 * time.Second, InitTimeout: 30 * time.Second, PoolSize: 2, WarmInstances: 1}
}

// newManager returns a Manager on the shared compilation cache, closed at
// the end of the test, and its log.
func newManager(t testing.TB, opts ...Option) (*Manager, *logSink) {
	t.Helper()
	logs := &logSink{}
	cfg := DefaultConfig().WithCacheDir(cacheDir).WithDefaults(testLimits())
	cfg.Backoff = Backoff{Threshold: 1000, Min: time.Second, Max: time.Second}
	m, err := NewManager(cfg, slog.New(logs), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m, logs
}

// testplug returns a Spec for the Go test plugin.
func testplug(t testing.TB, name, version string, config map[string]any) Spec {
	t.Helper()
	if config == nil {
		config = map[string]any{}
	}
	config["version"] = version
	b, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: name, Version: version, Module: goPlugin(t, "testdata/testplug"), Config: b,
		Capabilities: abi.Capabilities}
}

// load loads spec or fails the test.
func load(t testing.TB, m *Manager, spec Spec) {
	t.Helper()
	if err := m.Load(context.Background(), spec); err != nil {
		t.Fatalf("load %s: %v", spec.Name, err)
	}
}

// joinInput is a join request for room, encoded.
func joinInput(t testing.TB, room string) []byte {
	t.Helper()
	b, err := json.Marshal(abi.JoinRequest{Room: room, ParticipantID: "PA_test", Participants: 1,
		Claims: abi.Claims{Identity: "alice", Room: room, Grants: abi.Grants{CanPublish: true, CanSubscribe: true}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestLogger(h slog.Handler) *slog.Logger { return slog.New(h) }
