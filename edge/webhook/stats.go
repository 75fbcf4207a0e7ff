package webhook

import (
	"sync"
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the event-to-ack
// latency histogram.
var LatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600}

// Histogram is a latency histogram in the Prometheus shape: Counts[i] is
// the number of observations <= Bounds[i] (cumulative); Count and Sum
// (seconds) cover all observations, those above the last bound included.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Quantile estimates the q-quantile (0 < q <= 1) as the upper bound of
// the bucket it falls in; +Inf when it is above the last bound, 0 when
// empty.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q * float64(h.Count))
	if rank == 0 {
		rank = 1
	}
	for i, c := range h.Counts {
		if c >= rank {
			return h.Bounds[i]
		}
	}
	return inf
}

var inf = func() float64 { var z float64; return 1 / z }()

// Stats describes the pipeline. Counters count since the Pipeline was
// created, across its Runs.
type Stats struct {
	// Pending is the number of webhooks in the outbox at the deliverer's
	// last look; OldestPending is the age of the oldest of them.
	Pending       int
	OldestPending time.Duration
	// InFlight is the number of POSTs under way.
	InFlight int
	// Delivered counts acknowledged webhooks (2xx); Retried failed
	// attempts that will be retried; Dead webhooks dead-lettered; Gone
	// webhooks that left the outbox while queued here without an outcome
	// of ours (cleared by the operator, or settled by another leader).
	Delivered, Retried, Dead, Gone uint64
	// SettleErrors counts failed commits of outcomes (they are retried).
	SettleErrors uint64
	// Events counts journal entries processed; Enqueued the webhooks they
	// produced; HookFailures events whose hook failed (they fail open);
	// Dropped journal entries trimmed before they were processed.
	Events, Enqueued, HookFailures, Dropped uint64
	// Latency is the time from the presence event to the receiver's
	// acknowledgement (from enqueue when the event time is not known,
	// e.g. for webhooks enqueued by a previous leader).
	Latency Histogram
}

// metrics are the counters behind Stats, updated lock-free.
type metrics struct {
	pending, inFlight                 atomic.Int64
	oldest                            atomic.Int64 // unix nanoseconds of the oldest pending Enqueued; 0 when none
	delivered, retried, dead, gone    atomic.Uint64
	settleErrors                      atomic.Uint64
	events, enqueued, hookFail, dropd atomic.Uint64
	buckets                           []atomic.Uint64
	count, sumNanos                   atomic.Uint64

	// eventAt remembers the presence event time of webhooks enqueued
	// here, so latency counts from the event; bounded by maxEventTimes.
	mu      sync.Mutex
	eventAt map[string]time.Time
}

const maxEventTimes = 1 << 16

func newMetrics() *metrics {
	return &metrics{buckets: make([]atomic.Uint64, len(LatencyBuckets)), eventAt: map[string]time.Time{}}
}

func (m *metrics) rememberEvent(id string, at time.Time) {
	if at.IsZero() {
		return
	}
	m.mu.Lock()
	if len(m.eventAt) < maxEventTimes {
		m.eventAt[id] = at
	}
	m.mu.Unlock()
}

// since returns when the webhook's event happened (or fallback) and
// forgets it.
func (m *metrics) since(id string, fallback time.Time) time.Time {
	m.mu.Lock()
	at, ok := m.eventAt[id]
	delete(m.eventAt, id)
	m.mu.Unlock()
	if ok {
		return at
	}
	return fallback
}

func (m *metrics) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s := d.Seconds()
	for i, b := range LatencyBuckets {
		if s <= b {
			m.buckets[i].Add(1)
			break
		}
	}
	m.count.Add(1)
	m.sumNanos.Add(uint64(d))
}

func (m *metrics) snapshot(now time.Time) Stats {
	st := Stats{
		Pending:      int(m.pending.Load()),
		InFlight:     int(m.inFlight.Load()),
		Delivered:    m.delivered.Load(),
		Retried:      m.retried.Load(),
		Dead:         m.dead.Load(),
		Gone:         m.gone.Load(),
		SettleErrors: m.settleErrors.Load(),
		Events:       m.events.Load(),
		Enqueued:     m.enqueued.Load(),
		HookFailures: m.hookFail.Load(),
		Dropped:      m.dropd.Load(),
	}
	if o := m.oldest.Load(); o != 0 {
		st.OldestPending = max(now.Sub(time.Unix(0, o)), 0)
	}
	h := Histogram{Bounds: LatencyBuckets, Counts: make([]uint64, len(LatencyBuckets))}
	var cum uint64
	for i := range m.buckets {
		cum += m.buckets[i].Load()
		h.Counts[i] = cum
	}
	h.Count = m.count.Load()
	h.Sum = time.Duration(m.sumNanos.Load()).Seconds()
	if h.Count < cum { // a Stats racing an observe: keep the shape consistent
		h.Count = cum
	}
	st.Latency = h
	return st
}
