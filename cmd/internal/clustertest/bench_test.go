package clustertest

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkSIGKILLFailover kills the leader of a three-process cluster
// with SIGKILL and measures the time until a survivor leads
// (leader-ms) and until a join through a survivor, which commits a room
// claim, succeeds (write-ms); the killed node restarts from its data
// between iterations. Run it with -benchtime Nx.
func BenchmarkSIGKILLFailover(b *testing.B) {
	c := newTestCluster(b)
	var leaderTook, writeTook []time.Duration
	for i := 0; i < b.N; i++ {
		old := c.leader()
		survivors := c.others(old)
		start := time.Now()
		old.kill()
		eventually(b, 10*time.Second, "a new leader", func() bool {
			for _, p := range survivors {
				if st, err := p.status(); err == nil && st.State == "Leader" {
					return true
				}
			}
			return false
		})
		leaderTook = append(leaderTook, time.Since(start))
		eventually(b, 10*time.Second, "a committed write", func() bool {
			_, err := dial(b, survivors[i%2], fmt.Sprintf("failover-%d", i), "u", nil)
			return err == nil
		})
		writeTook = append(writeTook, time.Since(start))
		b.StopTimer()
		old.start()
		c.waitReady(30*time.Second, c.procs...)
		b.StartTimer()
	}
	for name, d := range map[string][]time.Duration{"leader": leaderTook, "write": writeTook} {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(d[len(d)-1].Milliseconds()), name+"-max-ms")
	}
}
