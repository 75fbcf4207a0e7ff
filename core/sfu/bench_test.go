package sfu

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// cpuMeter reports the CPU time of the benchmark's own OS thread per unit,
// beside ns/op: with the benchmark goroutine locked to its thread, work
// done synchronously (SRTP, the send system call and, on loopback, the
// kernel's delivery) is counted, and time spent waiting for a core on a
// busy machine is not.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

// startCPU locks the goroutine to its thread (until the benchmark ends)
// and starts measuring.
func startCPU(b *testing.B) *cpuMeter {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	start, ok := threadCPU()
	return &cpuMeter{start: start, ok: ok}
}

// report adds the metric unit: CPU nanoseconds per (b.N * per) units.
func (m *cpuMeter) report(b *testing.B, per int, unit string) {
	end, ok := threadCPU()
	if m.ok && ok && b.N > 0 {
		b.ReportMetric(float64(end-m.start)/float64(b.N*per), unit)
	}
}

// webrtcSSRC converts a test index into an SSRC.
func webrtcSSRC(i int) webrtc.SSRC { return webrtc.SSRC(i) }

// BenchmarkForward measures the fan-out of one incoming packet to N bound
// down tracks writing to a no-op writer: cache insert, header parse,
// keyframe check, per-subscriber rewrite and write call. One op is one
// incoming packet.
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			f := testForwarder(1024)
			for i := 0; i < n; i++ {
				bindFake(f, noopWriter{}, webrtcSSRC(1000+i))
			}
			pkt := rtpBytes(1, make([]byte, 1000))
			seq := uint16(1)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				seq++
				pkt[2], pkt[3] = byte(seq>>8), byte(seq)
				buf := f.cache.spareBuf()
				f.forward(buf[:copy(buf, pkt)])
			}
		})
	}
}

// BenchmarkForwardPion forwards through real subscriber peer connections
// over loopback: the same fan-out plus pion's interceptors, SRTP encryption
// and the UDP writes, batched per fan-out as in the server. One op is one
// incoming packet; cpu-ns/pkt-out is the forwarding thread's CPU time per
// packet delivered to one subscriber, to compare with BenchmarkFloor.
func BenchmarkForwardPion(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			e := newTestEngine(b)
			f := testForwarder(1024)
			f.batch = e.batch // as Publisher.startForwarder does
			clients := make([]*subClient, n)
			for i := range clients {
				clients[i] = newSubClient(b, e, true)
				if err := clients[i].server.Subscribe(f, "PA_owner"); err != nil {
					b.Fatal(err)
				}
			}
			pkt := rtpBytes(1, makePayload(0, true))
			seq := uint16(1)
			forward := func() {
				seq++
				pkt[2], pkt[3] = byte(seq>>8), byte(seq)
				buf := f.cache.spareBuf()
				f.forward(buf[:copy(buf, pkt)])
			}
			for _, c := range clients { // warm up until every client receives
				waitFor(b, 10*time.Second, "media at every subscriber", func() bool {
					forward()
					time.Sleep(time.Millisecond)
					c.mu.Lock()
					defer c.mu.Unlock()
					r := c.tracks[f.ID()]
					return r != nil && r.snapshot().packets > 0
				})
			}
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU(b)
			for b.Loop() {
				forward()
			}
			b.StopTimer()
			cpu.report(b, n, "cpu-ns/pkt-out")
			for _, c := range clients {
				c.close()
			}
		})
	}
}
