package sfu

import (
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLog returns a logger for tests: silent unless SFU_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("SFU_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestEngine starts an engine on a free port with loopback candidates.
func newTestEngine(t testing.TB) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MediaPort = 0
	cfg.IncludeLoopback = true
	cfg.KeyframeThrottle = 100 * time.Millisecond
	e, err := New(cfg, testLog())
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	return e
}

// clientAPI is a plain pion API playing the browser: default codecs, no
// interceptors (so every NACK/PLI/REMB in a test is sent on purpose), and
// SRTP replay protection off so a retransmitted packet is delivered again.
func clientAPI(t testing.TB) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.DisableSRTPReplayProtection(true)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// trickler applies remote candidates once the remote description is set.
type trickler struct {
	mu      sync.Mutex
	pc      *webrtc.PeerConnection
	ready   bool
	pending []webrtc.ICECandidateInit
}

func (tr *trickler) add(c *webrtc.ICECandidateInit) {
	if c == nil {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.ready {
		tr.pending = append(tr.pending, *c)
		return
	}
	_ = tr.pc.AddICECandidate(*c)
}

func (tr *trickler) setReady() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.ready {
		return
	}
	tr.ready = true
	for _, c := range tr.pending {
		_ = tr.pc.AddICECandidate(c)
	}
	tr.pending = nil
}

// Synthetic VP8 payload: descriptor (S=1, PID=0), VP8 header byte (P bit 0
// on keyframes), a 4-byte counter, filler derived from the counter, and a
// CRC-32 of everything before it.
const testPayloadSize = 600

func makePayload(counter uint32, key bool) []byte {
	p := make([]byte, testPayloadSize)
	p[0] = 0x10
	p[1] = 0x01
	if key {
		p[1] = 0x00
	}
	binary.BigEndian.PutUint32(p[2:], counter)
	for i := 6; i < len(p)-4; i++ {
		p[i] = byte(counter) + byte(i)
	}
	binary.BigEndian.PutUint32(p[len(p)-4:], crc32.ChecksumIEEE(p[:len(p)-4]))
	return p
}

// parsePayload checks a synthetic payload and returns its counter.
func parsePayload(p []byte) (counter uint32, key, ok bool) {
	if len(p) != testPayloadSize || crc32.ChecksumIEEE(p[:len(p)-4]) != binary.BigEndian.Uint32(p[len(p)-4:]) {
		return 0, false, false
	}
	return binary.BigEndian.Uint32(p[2:]), p[1]&0x01 == 0, true
}

// pubClient is the publishing browser: one pion PC sending synthetic VP8.
type pubClient struct {
	t      testing.TB
	pc     *webrtc.PeerConnection
	server *Publisher
	tr     *trickler

	mu      sync.Mutex
	fwds    map[string]*Forwarder // by client track id
	ended   map[string]bool       // forwarder ids whose OnTrackEnded fired
	senders map[string]*webrtc.RTPSender

	plis atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

// newPubClient connects a publishing client to e.
func newPubClient(t testing.TB, e *Engine) *pubClient {
	t.Helper()
	pc, err := clientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &pubClient{
		t: t, pc: pc, tr: &trickler{pc: pc},
		fwds: map[string]*Forwarder{}, ended: map[string]bool{}, senders: map[string]*webrtc.RTPSender{},
		stop: make(chan struct{}),
	}
	c.server, err = e.NewPublisher(PublisherHandlers{
		OnICECandidate: c.tr.add,
		OnTrack: func(f *Forwarder) {
			c.mu.Lock()
			c.fwds[f.ClientTrackID()] = f
			c.mu.Unlock()
		},
		OnTrackEnded: func(f *Forwarder) {
			c.mu.Lock()
			c.ended[f.ID()] = true
			c.mu.Unlock()
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
	t.Cleanup(c.close)
	return c
}

// addTrack adds a VP8 track sending 100 packets/s; call negotiate after.
func (c *pubClient) addTrack(id string) { c.addTrackMime(id, webrtc.MimeTypeVP8) }

// addTrackMime adds a track of the given codec sending 100 synthetic
// packets/s; call negotiate after.
func (c *pubClient) addTrackMime(id, mime string) {
	c.t.Helper()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, id, "stream-"+id)
	if err != nil {
		c.t.Fatal(err)
	}
	sender, err := c.pc.AddTrack(track)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.senders[id] = sender
	c.mu.Unlock()
	var keyNext atomic.Bool
	keyNext.Store(true)
	c.wg.Add(2)
	go func() { // RTCP from the server: count PLIs, answer with a keyframe
		defer c.wg.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					c.plis.Add(1)
					keyNext.Store(true)
				}
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for counter := uint32(0); ; counter++ {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			pkt := &rtp.Packet{
				Header: rtp.Header{
					Version: 2, SequenceNumber: uint16(counter + 1000),
					Timestamp: counter * 3000, Marker: true,
				},
				Payload: makePayload(counter, keyNext.Swap(false)),
			}
			if err := track.WriteRTP(pkt); err != nil {
				return
			}
		}
	}()
}

// removeTrack stops sending track id; call negotiate after.
func (c *pubClient) removeTrack(id string) {
	c.t.Helper()
	c.mu.Lock()
	sender := c.senders[id]
	c.mu.Unlock()
	if err := c.pc.RemoveTrack(sender); err != nil {
		c.t.Fatal(err)
	}
}

// negotiate sends an offer to the server and applies its answer.
func (c *pubClient) negotiate() {
	c.t.Helper()
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	answer, err := c.server.HandleOffer(offer)
	if err != nil {
		c.t.Fatalf("handle offer: %v", err)
	}
	if err := c.pc.SetRemoteDescription(answer); err != nil {
		c.t.Fatal(err)
	}
	c.tr.setReady()
}

// forwarder waits for the server's forwarder of client track id.
func (c *pubClient) forwarder(id string) *Forwarder {
	c.t.Helper()
	var f *Forwarder
	waitFor(c.t, 10*time.Second, "forwarder "+id, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		f = c.fwds[id]
		return f != nil
	})
	return f
}

func (c *pubClient) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	_ = c.pc.Close()
	if err := c.server.Close(); err != nil {
		c.t.Errorf("close publisher: %v", err)
	}
	c.wg.Wait()
}
