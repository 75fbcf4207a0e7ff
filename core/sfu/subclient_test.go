package sfu

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// recvTrack records what a subscribing client received on one track.
type recvTrack struct {
	mu           sync.Mutex
	track        *webrtc.TrackRemote
	packets      int
	unique       int
	lastCounter  uint32
	lastSeq      uint16
	started      bool
	corrupt      int
	outOfOrder   int
	seqGaps      int // sequence number did not follow the previous one
	counterJumps int // packets skipped by the server (pause)
	jumpToKey    int // jumps that landed on a keyframe
	bySeq        map[uint16]uint32
	dups         map[uint32]int // counter -> times received again
	ended        atomic.Bool
}

func (r *recvTrack) record(seq uint16, payload []byte) {
	counter, key, ok := parsePayload(payload)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.packets++
	if !ok {
		r.corrupt++
		return
	}
	if prev, seen := r.bySeq[seq]; seen && prev == counter {
		r.dups[counter]++ // a retransmission
		return
	}
	r.bySeq[seq] = counter
	r.unique++
	if r.started {
		if int32(counter-r.lastCounter) <= 0 {
			r.outOfOrder++
			return
		}
		if seq != r.lastSeq+1 {
			r.seqGaps++
		}
		if counter != r.lastCounter+1 {
			r.counterJumps++
			if key {
				r.jumpToKey++
			}
		}
	}
	r.started, r.lastCounter, r.lastSeq = true, counter, seq
}

// snapshot returns a copy of the counters (maps left out).
func (r *recvTrack) snapshot() recvTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recvTrack{
		packets: r.packets, unique: r.unique, lastCounter: r.lastCounter, lastSeq: r.lastSeq,
		corrupt: r.corrupt, outOfOrder: r.outOfOrder, seqGaps: r.seqGaps, counterJumps: r.counterJumps,
		jumpToKey: r.jumpToKey,
	}
}

func (r *recvTrack) String() string {
	s := r.snapshot()
	return fmt.Sprintf("packets=%d unique=%d corrupt=%d outOfOrder=%d seqGaps=%d jumps=%d jumpsToKey=%d",
		s.packets, s.unique, s.corrupt, s.outOfOrder, s.seqGaps, s.counterJumps, s.jumpToKey)
}

// subClient is the subscribing browser: answers the server's offers.
type subClient struct {
	t      testing.TB
	pc     *webrtc.PeerConnection
	server *Subscriber
	tr     *trickler
	offers chan webrtc.SessionDescription
	auto   bool

	mu     sync.Mutex
	tracks map[string]*recvTrack // by track id (the forwarder id)
	nOffer atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// newSubClient connects a subscribing client; with auto it answers every
// offer itself, otherwise the test calls answerNext.
func newSubClient(t testing.TB, e *Engine, auto bool) *subClient {
	t.Helper()
	pc, err := clientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &subClient{
		t: t, pc: pc, tr: &trickler{pc: pc}, offers: make(chan webrtc.SessionDescription, 16), auto: auto,
		tracks: map[string]*recvTrack{}, stop: make(chan struct{}),
	}
	c.server, err = e.NewSubscriber(SubscriberHandlers{
		OnICECandidate: c.tr.add,
		OnOffer: func(o webrtc.SessionDescription) {
			c.nOffer.Add(1)
			c.offers <- o
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			_ = c.server.AddICECandidate(ic.ToJSON())
		}
	})
	pc.OnTrack(c.onTrack)
	if auto {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-c.stop:
					return
				case o := <-c.offers:
					if err := c.answer(o); err != nil {
						t.Errorf("answer: %v", err)
					}
				}
			}
		}()
	}
	t.Cleanup(c.close)
	return c
}

func (c *subClient) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	r := &recvTrack{track: track, bySeq: map[uint16]uint32{}, dups: map[uint32]int{}}
	c.mu.Lock()
	c.tracks[track.ID()] = r
	c.mu.Unlock()
	buf := make([]byte, 1500)
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			r.ended.Store(true)
			return
		}
		var p rtpPacket
		if p.parse(buf[:n]) {
			r.record(p.seq, p.payload)
		}
	}
}

// answer applies one server offer and returns the answer to the server.
func (c *subClient) answer(o webrtc.SessionDescription) error {
	if err := c.pc.SetRemoteDescription(o); err != nil {
		return err
	}
	a, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(a); err != nil {
		return err
	}
	c.tr.setReady()
	return c.server.SetAnswer(a)
}

// nextOffer waits for the server's next offer (manual mode).
func (c *subClient) nextOffer() webrtc.SessionDescription {
	c.t.Helper()
	select {
	case o := <-c.offers:
		return o
	case <-time.After(10 * time.Second):
		c.t.Fatal("no offer from the subscriber")
		return webrtc.SessionDescription{}
	}
}

// track waits until the client receives packets of track id.
func (c *subClient) track(id string) *recvTrack {
	c.t.Helper()
	var r *recvTrack
	waitFor(c.t, 10*time.Second, "packets of "+id, func() bool {
		c.mu.Lock()
		r = c.tracks[id]
		c.mu.Unlock()
		return r != nil && r.snapshot().unique > 0
	})
	return r
}

// send writes RTCP to the server.
func (c *subClient) send(pkts ...rtcp.Packet) {
	c.t.Helper()
	if err := c.pc.WriteRTCP(pkts); err != nil {
		c.t.Fatalf("write rtcp: %v", err)
	}
}

func (c *subClient) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	if err := c.server.Close(); err != nil {
		c.t.Errorf("close subscriber: %v", err)
	}
	_ = c.pc.Close()
	c.wg.Wait()
}

// rtpPacket is the little of RTP a test client needs.
type rtpPacket struct {
	seq     uint16
	payload []byte
}

func (p *rtpPacket) parse(b []byte) bool {
	if len(b) < 12 || b[0]>>6 != 2 {
		return false
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension
		if len(b) < n+4 {
			return false
		}
		n += 4 + 4*(int(b[n+2])<<8|int(b[n+3]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		end -= int(b[end-1])
	}
	if n > end {
		return false
	}
	p.seq = uint16(b[2])<<8 | uint16(b[3])
	p.payload = b[n:end]
	return true
}
