package raftstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// BenchmarkPresenceApply measures committed presence writes (one join or
// leave per command) on a three-node cluster over TLS loopback, issued on
// the leader or on a follower (forwarded), by 1 or 64 concurrent writers.
// It reports per-write latency percentiles and throughput.
func BenchmarkPresenceApply(b *testing.B) {
	for _, via := range []string{"leader", "follower"} {
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("via=%s/writers=%d", via, writers), func(b *testing.B) {
				benchPresence(b, via, writers)
			})
		}
	}
}

func benchPresence(b *testing.B, via string, writers int) {
	c := newCluster(b, 3, nil)
	nd := c.leader(15 * time.Second)
	if via == "follower" {
		nd = c.followers()[0]
	}
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				kind := core.PresenceJoined
				if i%2 == 1 {
					kind = core.PresenceLeft
				}
				ch := core.PresenceChange{PresenceEvent: core.PresenceEvent{
					Kind: kind, Room: fmt.Sprintf("room-%d", w), Identity: "u", Node: nd.id,
					ParticipantID: fmt.Sprintf("PA_%d_%d", w, i/2), At: time.Now(),
				}}
				t0 := time.Now()
				if err := nd.s.RecordPresence(context.Background(), ch); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
}

// BenchmarkLeaderFailover shuts the leader of a three-node cluster down
// (in-process; the multi-process SIGKILL variant needs the binary) and
// measures the time until a write through a survivor commits again. The
// old leader restarts from its data between iterations.
func BenchmarkLeaderFailover(b *testing.B) {
	c := newCluster(b, 3, nil)
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		old := c.leader(15 * time.Second)
		var survivor *testNode
		for _, nd := range c.running() {
			if nd != old {
				survivor = nd
			}
		}
		start := time.Now()
		c.stop(old)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := survivor.s.ClaimRoom(ctx, fmt.Sprintf("failover-%d", i), "")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		c.start(old)
		c.waitReady(old)
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
}
