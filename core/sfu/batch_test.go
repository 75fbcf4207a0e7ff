package sfu

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// udpSink is a loopback socket that records what it receives.
type udpSink struct {
	conn *net.UDPConn
	got  chan []byte
}

// newUDPSink returns a sink that records every datagram.
func newUDPSink(t testing.TB) *udpSink { return listenSink(t, true) }

// newUDPDrain returns a sink that only drains, without allocating (for
// allocation tests).
func newUDPDrain(t testing.TB) *udpSink { return listenSink(t, false) }

func listenSink(t testing.TB, record bool) *udpSink {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadBuffer(4 << 20); err != nil {
		t.Log(err)
	}
	s := &udpSink{conn: conn, got: make(chan []byte, 4096)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.got)
				return
			}
			if record {
				s.got <- append([]byte(nil), buf[:n]...)
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		for range s.got { // wait for the reader to exit
		}
	})
	return s
}

func (s *udpSink) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// next returns the next datagram, or nil after a short wait.
func (s *udpSink) next(wait time.Duration) []byte {
	select {
	case b := <-s.got:
		return b
	case <-time.After(wait):
		return nil
	}
}

func newTestBatchConn(t testing.TB) *batchConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := newBatchConn(conn)
	if c.sys == nil {
		t.Skip("no sendmmsg on this platform")
	}
	return c
}

// TestBatchConnQueuesInsideABatch checks that writes go out at once outside
// a batch, wait for end inside one, leave in order to their own
// destinations, and that a full batch is flushed without waiting for end.
func TestBatchConnQueuesInsideABatch(t *testing.T) {
	c := newTestBatchConn(t)
	a, b := newUDPSink(t), newUDPSink(t)

	if _, err := c.WriteToAddrPort([]byte("direct"), a.addr()); err != nil {
		t.Fatal(err)
	}
	if got := a.next(2 * time.Second); string(got) != "direct" {
		t.Fatalf("outside a batch: got %q", got)
	}

	c.begin()
	for i := range 3 {
		_, _ = c.WriteToAddrPort([]byte{'a', byte(i)}, a.addr())
		_, _ = c.WriteTo([]byte{'b', byte(i)}, net.UDPAddrFromAddrPort(b.addr()))
	}
	if got := a.next(50 * time.Millisecond); got != nil {
		t.Fatalf("a datagram left before the batch ended: %q", got)
	}
	c.end()
	for i := range 3 {
		if got := a.next(2 * time.Second); !bytes.Equal(got, []byte{'a', byte(i)}) {
			t.Errorf("a: datagram %d = %q", i, got)
		}
		if got := b.next(2 * time.Second); !bytes.Equal(got, []byte{'b', byte(i)}) {
			t.Errorf("b: datagram %d = %q", i, got)
		}
	}

	c.begin()
	for i := range sendBatchSize + 1 {
		_, _ = c.WriteToAddrPort([]byte{byte(i)}, a.addr())
	}
	for i := range sendBatchSize { // the full batch leaves before end
		if got := a.next(2 * time.Second); !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("full batch: datagram %d = %v", i, got)
		}
	}
	if got := a.next(50 * time.Millisecond); got != nil {
		t.Fatalf("the 65th datagram left before end: %v", got)
	}
	c.end()
	if got := a.next(2 * time.Second); !bytes.Equal(got, []byte{sendBatchSize}) {
		t.Fatalf("after end: %v", got)
	}
	if c.errors.Load() != 0 {
		t.Errorf("%d send errors", c.errors.Load())
	}
}

// TestBatchConnNestedBatches checks that with two fan-outs overlapping,
// the first end sends what both queued and the second sends its rest.
func TestBatchConnNestedBatches(t *testing.T) {
	c := newTestBatchConn(t)
	a := newUDPSink(t)
	c.begin()
	c.begin()
	_, _ = c.WriteToAddrPort([]byte("1"), a.addr())
	c.end()
	if got := a.next(2 * time.Second); string(got) != "1" {
		t.Fatalf("first end: %q", got)
	}
	_, _ = c.WriteToAddrPort([]byte("2"), a.addr())
	if got := a.next(50 * time.Millisecond); got != nil {
		t.Fatalf("sent while a batch is still open: %q", got)
	}
	c.end()
	if got := a.next(2 * time.Second); string(got) != "2" {
		t.Fatalf("second end: %q", got)
	}
}

// TestBatchedForwardDoesNotAllocate forwards through down tracks whose
// writer is the batching socket, as pion's would be: 0 allocations per
// packet.
func TestBatchedForwardDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := newTestBatchConn(t)
	f := testForwarder(1024)
	f.batch = c
	for i := range 10 {
		bindFake(f, socketWriter{c: c, to: newUDPDrain(t).addr()}, 1000+webrtcSSRC(i))
	}
	pkt := rtpBytes(1, make([]byte, 1000))
	seq := uint16(1)
	allocs := testing.AllocsPerRun(200, func() {
		seq++
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		buf := f.cache.spareBuf()
		f.forward(buf[:copy(buf, pkt)])
	})
	if allocs != 0 {
		t.Fatalf("batched forward allocates %.1f times per packet", allocs)
	}
	if c.flushes.Load() == 0 || c.datagrams.Load() < 10*200 {
		t.Fatalf("%d flushes of %d datagrams", c.flushes.Load(), c.datagrams.Load())
	}
}

// socketWriter marshals RTP into a datagram and writes it through a
// batchConn, as pion's SRTP session does (minus the encryption).
type socketWriter struct {
	c  *batchConn
	to netip.AddrPort
}

func (w socketWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	var buf [maxPacketSize]byte
	n, err := h.MarshalTo(buf[:])
	if err != nil {
		return 0, err
	}
	n += copy(buf[n:], payload)
	return w.c.WriteToAddrPort(buf[:n], w.to)
}

func (w socketWriter) Write(b []byte) (int, error) { return w.c.WriteToAddrPort(b, w.to) }
