package sfu

import "sync"

// maxPacketSize is the size of one cache slot; larger packets are dropped.
const maxPacketSize = 1500

// packetCache keeps the last size RTP packets of one track, indexed by
// sequence number, for NACK retransmission. Its memory is allocated once.
//
// The forwarder's read goroutine owns the spare buffer: it reads the next
// packet from the network straight into it, then push swaps it into the
// packet's slot and takes the evicted buffer as the next spare. Nobody else
// ever touches the spare, so the read needs no lock; get copies a packet out
// under the lock, so a swap never overlaps a copy.
type packetCache struct {
	mu      sync.Mutex
	mem     []byte // (size+1) * maxPacketSize bytes
	slots   []slot // indexed by seq & mask
	mask    uint16 // size - 1
	spare   int32  // index of the spare buffer in mem
	highest uint16 // highest sequence number pushed
	started bool   // highest is valid
}

// slot maps one sequence-number slot to the buffer holding the packet.
type slot struct {
	buf   int32 // buffer index in mem
	n     int32 // packet length, 0 when empty
	seq   uint16
	valid bool
}

// newPacketCache returns a cache of size slots; size is a power of two.
func newPacketCache(size int) *packetCache {
	c := &packetCache{
		mem:   make([]byte, (size+1)*maxPacketSize),
		slots: make([]slot, size),
		mask:  uint16(size - 1),
		spare: int32(size),
	}
	for i := range c.slots {
		c.slots[i].buf = int32(i)
	}
	return c
}

// buffer returns buffer i of mem.
func (c *packetCache) buffer(i int32) []byte {
	off := int(i) * maxPacketSize
	return c.mem[off : off+maxPacketSize : off+maxPacketSize]
}

// spareBuf returns the spare buffer to read the next packet into. Only the
// forwarder's read goroutine may call it.
func (c *packetCache) spareBuf() []byte {
	return c.buffer(c.spare)
}

// push stores the packet pkt with sequence number seq and returns the cached
// bytes. When pkt is the spare buffer (read there by the caller) it is
// stored without copying; otherwise it is copied into the spare first.
// Packets older than the cache span are not stored and are returned as is.
// Only the forwarder's read goroutine may call it.
func (c *packetCache) push(seq uint16, pkt []byte) []byte {
	if len(pkt) > maxPacketSize {
		return pkt
	}
	spare := c.buffer(c.spare)
	if len(pkt) > 0 && &pkt[0] != &spare[0] {
		copy(spare, pkt)
	}
	c.mu.Lock()
	if c.started {
		d := int16(seq - c.highest)
		if int(d) < -int(c.mask) {
			c.mu.Unlock()
			return pkt
		}
		if d > 0 {
			c.highest = seq
		}
	} else {
		c.highest, c.started = seq, true
	}
	s := &c.slots[seq&c.mask]
	s.buf, c.spare = c.spare, s.buf
	s.n, s.seq, s.valid = int32(len(pkt)), seq, true
	c.mu.Unlock()
	return spare[:len(pkt)]
}

// get copies the packet with sequence number seq into dst and returns its
// length, or 0 when it is not cached.
func (c *packetCache) get(seq uint16, dst []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[seq&c.mask]
	if !s.valid || s.seq != seq || int(s.n) > len(dst) {
		return 0
	}
	return copy(dst, c.buffer(s.buf)[:s.n])
}
