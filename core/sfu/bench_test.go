package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

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
// and one UDP write per subscriber. One op is one incoming packet.
func BenchmarkForwardPion(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			e := newTestEngine(b)
			f := testForwarder(1024)
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
			for b.Loop() {
				forward()
			}
			b.StopTimer()
			for _, c := range clients {
				c.close()
			}
		})
	}
}
