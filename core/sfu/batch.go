package sfu

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// sendBatchSize is how many datagrams one flush sends at most.
const sendBatchSize = 64

// batchConn is the media UDP socket as pion's ICE mux sees it. Outside a
// batch it writes each datagram at once, like the socket itself. While a
// forwarder fans a packet out (between begin and end), writes are copied
// into a batch instead and sent together with one sendmmsg(2) when the
// fan-out ends or the batch is full: one system call for up to 64
// subscribers instead of one each, which is most of what a forwarded packet
// costs (see BenchmarkFloor).
//
// Writes from other goroutines (RTCP, STUN, NACK retransmissions) made while
// some batch is open join it and leave with its flush, at most one fan-out
// later. Every end flushes whatever is queued, so nothing waits for a
// forwarder that has nothing more to send. Reads go straight to the socket.
type batchConn struct {
	*net.UDPConn
	sys *batchSys // nil where sendmmsg is not available: never batch

	mu   sync.Mutex
	open int        // fan-outs in progress
	cur  *sendBatch // queued datagrams; never nil when sys is set
	free []*sendBatch

	flushes, datagrams, errors atomic.Uint64
}

// sendBatch holds datagrams queued for one sendmmsg.
type sendBatch struct {
	n     int
	mem   []byte // sendBatchSize * maxPacketSize
	lens  [sendBatchSize]int
	addrs [sendBatchSize]netip.AddrPort
	sys   batchState // platform message headers
}

// newBatchConn wraps conn; batching is on where the platform supports it.
func newBatchConn(conn *net.UDPConn) *batchConn {
	c := &batchConn{UDPConn: conn, sys: newBatchSys(conn)}
	if c.sys != nil {
		c.cur = c.newBatch()
	}
	return c
}

func (c *batchConn) newBatch() *sendBatch {
	b := &sendBatch{mem: make([]byte, sendBatchSize*maxPacketSize)}
	b.sys.init(b)
	return b
}

// begin opens a batch: writes are queued until the matching end.
func (c *batchConn) begin() {
	if c == nil || c.sys == nil {
		return
	}
	c.mu.Lock()
	c.open++
	c.mu.Unlock()
}

// end closes a batch and sends everything queued.
func (c *batchConn) end() {
	if c == nil || c.sys == nil {
		return
	}
	c.mu.Lock()
	c.open--
	b := c.takeLocked()
	c.mu.Unlock()
	if b != nil {
		c.flush(b)
	}
}

// takeLocked swaps out the current batch if it holds anything. c.mu held.
func (c *batchConn) takeLocked() *sendBatch {
	b := c.cur
	if b.n == 0 {
		return nil
	}
	if k := len(c.free); k > 0 {
		c.cur, c.free = c.free[k-1], c.free[:k-1]
	} else {
		c.cur = c.newBatch()
	}
	return b
}

// flush sends b and returns it to the free list.
func (c *batchConn) flush(b *sendBatch) {
	c.flushes.Add(1)
	c.datagrams.Add(uint64(b.n))
	if failed := c.sys.send(b); failed > 0 {
		c.errors.Add(uint64(failed))
	}
	b.n = 0
	c.mu.Lock()
	c.free = append(c.free, b)
	c.mu.Unlock()
}

// WriteToAddrPort queues p while a batch is open and sends it otherwise. It
// implements the ICE mux's allocation-free write.
func (c *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if c.sys == nil || len(p) > maxPacketSize {
		return c.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !addr.Addr().Is4() {
		return c.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	c.mu.Lock()
	if c.open == 0 {
		c.mu.Unlock()
		return c.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	b := c.cur
	i := b.n
	copy(b.mem[i*maxPacketSize:], p)
	b.lens[i], b.addrs[i] = len(p), addr
	b.n++
	var full *sendBatch
	if b.n == sendBatchSize {
		full = c.takeLocked()
	}
	c.mu.Unlock()
	if full != nil {
		c.flush(full)
	}
	return len(p), nil
}

// WriteTo implements net.PacketConn, batching like WriteToAddrPort.
func (c *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok && c.sys != nil {
		return c.WriteToAddrPort(p, ua.AddrPort())
	}
	return c.UDPConn.WriteTo(p, addr)
}

// ReadFromAddrPort implements the ICE mux's allocation-free read.
func (c *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return c.UDPConn.ReadFromUDPAddrPort(p)
}
