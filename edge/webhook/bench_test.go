package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// BenchmarkDeliver measures the single-node pipeline end to end: presence
// events committed to a FileStore (fsync each), processed by a Go hook,
// POSTed signed (Ed25519 + HMAC) to a loopback receiver and settled. It
// reports webhooks/s and the p50/p99 latency from the event's time to
// the receiver's acknowledgement. "burst" commits b.N events from 8
// goroutines as fast as they go (throughput; the latency then includes
// the backlog); "paced" offers 200 events/s (latency of a healthy,
// unsaturated pipeline).
func BenchmarkDeliver(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchDeliver(b, 0) })
	b.Run("paced-200", func(b *testing.B) { benchDeliver(b, 200) })
}

func benchDeliver(b *testing.B, rate int) {
	ctx := context.Background()
	s := openStore(b, b.TempDir())
	defer s.Close()
	if _, err := s.EnsureSigningKey(ctx); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			At time.Time `json:"at"`
		}
		_ = json.NewDecoder(r.Body).Decode(&v)
		mu.Lock()
		lat = append(lat, time.Since(v.At))
		mu.Unlock()
	}))
	defer srv.Close()
	hook := HookFunc(func(_ context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
		body, _ := json.Marshal(map[string]any{"event": ev.Kind, "room": ev.Room, "identity": ev.Identity, "at": ev.At})
		return []core.Webhook{{Room: ev.Room, URL: srv.URL + "/hook", Body: body, Secret: testSecret}}, nil
	})
	cfg := DefaultConfig()
	cfg.PerHost, cfg.SettleInterval = 16, 10*time.Millisecond
	p := newPipeline(b, cfg, s, hook)
	s.OnCommit(p.Notify)
	run := start(b, p)
	defer run.stop()

	const rooms, writers = 64, 8
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	ev := func(i int) core.PresenceEvent {
		return core.PresenceEvent{Kind: core.PresenceJoined, Room: fmt.Sprintf("room-%d", i%rooms), Identity: fmt.Sprintf("u%d", i)}
	}
	if rate > 0 {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range b.N { // offered load: a slow fsync does not slow the offer
			<-tick.C
			wg.Go(func() { s.Presence(ctx, ev(i)) })
		}
		tick.Stop()
	}
	for w := range writers {
		if rate > 0 {
			break
		}
		wg.Go(func() {
			for i := w; i < b.N; i += writers {
				s.Presence(ctx, ev(i))
			}
		})
	}
	wg.Wait()
	for p.Stats().Delivered < uint64(b.N) || len(s.PendingWebhooks()) > 0 {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(t0)
	b.StopTimer()
	mu.Lock()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	mu.Unlock()
	b.ReportMetric(float64(b.N)/el.Seconds(), "webhooks/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
