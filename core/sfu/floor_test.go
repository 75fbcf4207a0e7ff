package sfu

import (
	"net"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"
)

// The floor: what one forwarded packet costs at the least on this machine,
// whatever the server does around it. Each packet that leaves an SFU is SRTP
// encrypted once (per subscriber: each has its own keys) and sent as one UDP
// datagram. BenchmarkFloor measures those two parts and their sum for a
// 1200-byte RTP packet over loopback, beside BenchmarkForwardPion, which
// forwards the same way through pion.

// floorPacketSize is the RTP packet size of the floor benchmarks.
const floorPacketSize = 1200

// floorBatch is the sendmmsg batch size of the batched variant.
const floorBatch = 64

// floorProfiles are the SRTP profiles measured. pion negotiates AES-256-GCM
// between two pion peers (its default preference), browsers usually
// AES-128-GCM or AES-CM-HMAC-SHA1-80.
var floorProfiles = []struct {
	name    string
	profile srtp.ProtectionProfile
}{
	{"aes128gcm", srtp.ProtectionProfileAeadAes128Gcm},
	{"aes256gcm", srtp.ProtectionProfileAeadAes256Gcm},
	{"aescm-sha1-80", srtp.ProtectionProfileAes128CmHmacSha1_80},
}

// loopbackPair returns a sending socket and the address of a receiving one
// drained by a goroutine until the benchmark ends.
func loopbackPair(b *testing.B) (*net.UDPConn, *net.UDPAddr) {
	b.Helper()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // drain like a receiving client would, batch-reading to stay cheap
		defer wg.Done()
		pc := ipv4.NewPacketConn(rx)
		msgs := make([]ipv4.Message, floorBatch)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		}
		for {
			if _, err := pc.ReadBatch(msgs, 0); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		_ = tx.Close()
		_ = rx.Close()
		wg.Wait()
	})
	return tx, rx.LocalAddr().(*net.UDPAddr)
}

// floorContext returns an SRTP encryption context for profile.
func floorContext(b *testing.B, profile srtp.ProtectionProfile) *srtp.Context {
	b.Helper()
	keyLen, err := profile.KeyLen()
	if err != nil {
		b.Fatal(err)
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		b.Fatal(err)
	}
	ctx, err := srtp.CreateContext(make([]byte, keyLen), make([]byte, saltLen), profile)
	if err != nil {
		b.Fatal(err)
	}
	return ctx
}

// floorPacket returns a marshaled RTP packet of floorPacketSize bytes.
func floorPacket() []byte {
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 3000, SSRC: 0x1234},
		Payload: make([]byte, floorPacketSize-12),
	}
	buf, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return buf
}

// BenchmarkFloor measures, per 1200-byte packet: one loopback UDP send
// (sendto, and sendmmsg in batches of 64), one SRTP encryption per profile,
// and encryption plus send together, which is the floor of one forwarded
// packet. One op is one packet; cpu-ns/op is the sending thread's CPU time
// (see cpuMeter), which a busy machine disturbs less than ns/op.
func BenchmarkFloor(b *testing.B) {
	b.Run("udp-sendto", benchUDPSend)
	b.Run("udp-sendmmsg-64", benchUDPSendBatch)
	for _, p := range floorProfiles {
		b.Run("srtp-"+p.name, func(b *testing.B) { benchSRTP(b, p.profile) })
	}
	for _, p := range floorProfiles {
		b.Run("srtp+sendto-"+p.name, func(b *testing.B) { benchSRTPSend(b, p.profile) })
	}
}

func benchUDPSend(b *testing.B) {
	tx, to := loopbackPair(b)
	pkt := floorPacket()
	addr := to.AddrPort()
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		if _, err := tx.WriteToUDPAddrPort(pkt, addr); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, 1, "cpu-ns/op")
}

func benchUDPSendBatch(b *testing.B) {
	tx, to := loopbackPair(b)
	pc := ipv4.NewPacketConn(tx)
	pkt := floorPacket()
	msgs := make([]ipv4.Message, floorBatch)
	for i := range msgs {
		msgs[i] = ipv4.Message{Buffers: [][]byte{pkt}, Addr: to}
	}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	n := 0
	cpu := startCPU(b)
	for b.Loop() {
		n++
		if n < floorBatch {
			continue
		}
		n = 0
		for sent := 0; sent < floorBatch; {
			k, err := pc.WriteBatch(msgs[sent:], 0)
			if err != nil {
				b.Fatal(err)
			}
			sent += k
		}
	}
	cpu.report(b, 1, "cpu-ns/op")
}

func benchSRTP(b *testing.B, profile srtp.ProtectionProfile) {
	ctx := floorContext(b, profile)
	pkt := floorPacket()
	dst := make([]byte, 0, 1500)
	var h rtp.Header
	seq := uint16(0)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		seq++
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		out, err := ctx.EncryptRTP(dst[:0], pkt, &h)
		if err != nil {
			b.Fatal(err)
		}
		dst = out
	}
	cpu.report(b, 1, "cpu-ns/op")
}

func benchSRTPSend(b *testing.B, profile srtp.ProtectionProfile) {
	tx, to := loopbackPair(b)
	ctx := floorContext(b, profile)
	pkt := floorPacket()
	addr := to.AddrPort()
	dst := make([]byte, 0, 1500)
	var h rtp.Header
	seq := uint16(0)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for b.Loop() {
		seq++
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		out, err := ctx.EncryptRTP(dst[:0], pkt, &h)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.WriteToUDPAddrPort(out, addr); err != nil {
			b.Fatal(err)
		}
		dst = out
	}
	cpu.report(b, 1, "cpu-ns/op")
}
