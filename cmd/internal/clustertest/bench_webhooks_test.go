package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/whtest"
)

// BenchmarkWebhookDelivery measures presence webhooks on a healthy
// three-process cluster with the default delivery settings (4 POSTs at a
// time per receiver host): 8 clients join and leave b.N rooms through
// random nodes, each visit giving four webhooks (room.started,
// participant.joined, participant.left, room.finished), POSTed to a real
// receiver that acknowledges at once. "saturated" visits as fast as the
// clients can, "paced" pauses 50 ms between a client's visits;
// "saturated-per-host-16" allows 16 POSTs at a time. It reports
// the webhooks acknowledged per second from the first event to the last
// acknowledgement (hooks/s), the events' own rate (events/s), and the
// event-to-acknowledgement latency (p50-ms, p99-ms; the event time is the
// body's timestamp, taken when the node saw the change). Run it with
// -benchtime Nx.
func BenchmarkWebhookDelivery(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchWebhooks(b, 0, 4) })
	b.Run("paced", func(b *testing.B) { benchWebhooks(b, 50*time.Millisecond, 4) })
	b.Run("saturated-per-host-16", func(b *testing.B) { benchWebhooks(b, 0, 16) })
}

func benchWebhooks(b *testing.B, pause time.Duration, perHost int) {
	rcv := whtest.New(hookSecret, nil)
	b.Cleanup(rcv.Close)
	c := newTestCluster(b, append(hookArgs(b, rcv), "--webhook-per-host", fmt.Sprint(perHost))...)
	rcv.SetKeys(keysOf(func() []*proc { return c.procs }))
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	var mu sync.Mutex
	var visits []visit
	for w := range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				time.Sleep(pause)
				p := c.procs[int(i)%len(c.procs)]
				v := visit{room: fmt.Sprintf("b%d-%d", w, i), identity: "u", node: p.id}
				cl, err := dial(b, p, v.room, v.identity, nil)
				if err != nil {
					failed.Add(1)
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := cl.Leave(ctx); err != nil {
					failed.Add(1)
				} else {
					mu.Lock()
					visits = append(visits, v)
					mu.Unlock()
				}
				cancel()
				cl.Close()
			}
		})
	}
	wg.Wait()
	eventsDone := time.Since(start)
	want := 4 * (b.N - int(failed.Load()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := rcv.Wait(ctx, func([]whtest.Request) bool { return len(rcv.Unique()) >= want }); err != nil {
		logWebhookMetrics(b, c.procs)
		logLines(b, c.procs, "releasing room claim failed")
		miss := indexHooks(rcv.Acked()).missingVisits(visits)
		for _, m := range miss[:min(len(miss), 5)] {
			if room, ok := strings.CutPrefix(m, "room.finished "); ok {
				code, claim, cerr := c.procs[0].room(room, true)
				b.Logf("claim of %s: %d %+v %v", room, code, claim, cerr)
			}
		}
		b.Fatalf("%d of %d webhooks: %v; missing %d: %q", len(rcv.Unique()), want, err, len(miss), miss[:min(len(miss), 40)])
	}
	b.StopTimer()
	reqs := rcv.Unique()
	var lat []time.Duration
	first, last := time.Now(), time.Time{}
	for _, r := range reqs {
		var doc struct{ Timestamp time.Time }
		if err := json.Unmarshal(r.Body, &doc); err != nil || doc.Timestamp.IsZero() {
			b.Fatalf("%s: no timestamp in %s", r.ID, r.Body)
		}
		lat = append(lat, r.At.Sub(doc.Timestamp))
		if doc.Timestamp.Before(first) {
			first = doc.Timestamp
		}
		if r.At.After(last) {
			last = r.At
		}
	}
	slices.Sort(lat)
	if errs := rcv.Errors(); len(errs) > 0 {
		b.Fatalf("%d requests did not verify: %q", len(errs), errs[0])
	}
	b.ReportMetric(float64(len(reqs))/last.Sub(first).Seconds(), "hooks/s")
	b.ReportMetric(float64(want)/eventsDone.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(rcv.Requests())-len(reqs)), "redelivered")
}
