//go:build linux && (amd64 || arm64)

package sfu

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSys sends batches with sendmmsg(2) on the socket's descriptor.
type batchSys struct {
	raw syscall.RawConn
}

// newBatchSys returns the sender for conn, nil if its descriptor is not
// reachable.
func newBatchSys(conn *net.UDPConn) *batchSys {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	return &batchSys{raw: raw}
}

// mmsghdr is struct mmsghdr of 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// batchState is the message headers of one batch, pointing into its
// memory once and for all, so a flush only fills in lengths and addresses.
type batchState struct {
	hdrs   [sendBatchSize]mmsghdr
	iovs   [sendBatchSize]syscall.Iovec
	names  [sendBatchSize]syscall.RawSockaddrInet4
	off    int // next message to send
	end    int // messages in this flush
	failed int // messages the kernel refused
	write  func(fd uintptr) bool
}

// init points the headers at b's buffers.
func (s *batchState) init(b *sendBatch) {
	for i := range s.hdrs {
		s.iovs[i].Base = &b.mem[i*maxPacketSize]
		s.names[i].Family = syscall.AF_INET
		h := &s.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Namelen = syscall.SizeofSockaddrInet4
		h.Iov = &s.iovs[i]
		h.Iovlen = 1
	}
	s.write = s.sendmmsg
}

// send sends the datagrams queued in b and returns how many failed.
func (s *batchSys) send(b *sendBatch) int {
	st := &b.sys
	for i := 0; i < b.n; i++ {
		st.iovs[i].SetLen(b.lens[i])
		a := b.addrs[i]
		port := (*[2]byte)(unsafe.Pointer(&st.names[i].Port))
		port[0], port[1] = byte(a.Port()>>8), byte(a.Port())
		st.names[i].Addr = a.Addr().As4()
	}
	st.off, st.end, st.failed = 0, b.n, 0
	if err := s.raw.Write(st.write); err != nil {
		st.failed += st.end - st.off // socket closed: the rest is dropped
	}
	return st.failed
}

// sendmmsg is the RawConn write callback: it sends until done, skipping a
// datagram the kernel refuses (as a failed sendto would drop it), and asks
// to be called again when the socket is writable after EAGAIN.
func (s *batchState) sendmmsg(fd uintptr) bool {
	for s.off < s.end {
		n, _, errno := syscall.Syscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&s.hdrs[s.off])), uintptr(s.end-s.off), 0, 0, 0)
		switch errno {
		case 0:
			s.off += int(n)
		case syscall.EAGAIN:
			return false
		case syscall.EINTR:
		default:
			s.failed++
			s.off++
		}
	}
	return true
}
