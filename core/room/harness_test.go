package room

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/core/sfu"
)

// The harness drives a Manager the way the signaling layer does, with real
// pion peer connections over loopback playing the clients: each testPeer
// answers the server's subscriber offers, trickles candidates both ways,
// publishes synthetic RTP and counts what it receives per track.

// presenceLog records presence events in the order they were reported.
type presenceLog struct {
	mu  sync.Mutex
	evs []core.PresenceEvent
}

func (l *presenceLog) Presence(_ context.Context, ev core.PresenceEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *presenceLog) events() []core.PresenceEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]core.PresenceEvent(nil), l.evs...)
}

// newTestManager returns a Manager over a fresh engine; mutate, if not
// nil, adjusts the config.
func newTestManager(t *testing.T, pres core.Presence, mutate func(*Config)) *Manager {
	t.Helper()
	mc := sfu.DefaultConfig()
	mc.MediaPort = 0
	mc.IncludeLoopback = true
	mc.KeyframeThrottle = 50 * time.Millisecond
	eng, err := sfu.New(mc, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID = "NO_test"
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := NewManager(cfg, Deps{Engine: eng, Presence: pres})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close(ReasonShutdown)
		eng.Close()
	})
	return m
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clientAPI is a plain pion API playing the browser.
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
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// event is one event the room pushed to a peer.
type event struct {
	typ  string
	data any
}

// testPeer is one client: a Sink plus its two peer connections.
type testPeer struct {
	t        *testing.T
	identity string
	api      *webrtc.API
	p        *Participant
	ready    chan struct{} // closed once p is set
	work     chan func()   // media signaling, applied in order
	stop     chan struct{}
	worker   chan struct{}  // closed when run returns
	wg       sync.WaitGroup // media goroutines

	mu      sync.Mutex
	events  []event
	removed []string
	pub     *webrtc.PeerConnection
	sub     *webrtc.PeerConnection
	pending map[string][]webrtc.ICECandidateInit // server candidates before the remote description, by target
	recv    map[string]*atomic.Int64             // packets received, by Parley track id
	plis    atomic.Int64
}

// joinPeer joins room as identity with grants and auto-subscribe.
func joinPeer(t *testing.T, m *Manager, room, identity string, g core.Grants) *testPeer {
	t.Helper()
	c, err := tryJoin(t, m, room, identity, g)
	if err != nil {
		t.Fatalf("%s: join %s: %v", identity, room, err)
	}
	return c
}

// tryJoin is joinPeer returning the join's error.
func tryJoin(t *testing.T, m *Manager, room, identity string, g core.Grants) (*testPeer, error) {
	t.Helper()
	c := &testPeer{
		t: t, identity: identity, api: clientAPI(t), ready: make(chan struct{}),
		work: make(chan func(), 4096), stop: make(chan struct{}), worker: make(chan struct{}),
		pending: map[string][]webrtc.ICECandidateInit{}, recv: map[string]*atomic.Int64{},
	}
	go c.run()
	t.Cleanup(c.close)
	p, err := m.Join(context.Background(), core.Claims{Identity: identity, Room: room, Grants: g}, JoinOptions{AutoSubscribe: true}, c)
	if err != nil {
		return nil, err
	}
	c.p = p
	close(c.ready)
	return c, nil
}

// Send implements Sink.
func (c *testPeer) Send(typ string, data any) {
	c.mu.Lock()
	c.events = append(c.events, event{typ, data})
	c.mu.Unlock()
	switch typ {
	case protocol.TypeSubOffer:
		o := data.(protocol.SubOffer).Offer
		c.work <- func() { c.answer(o) }
	case protocol.TypeTrickle:
		tr := data.(protocol.Trickle)
		c.work <- func() { c.addServerCandidate(tr) }
	}
}

// Removed implements Sink.
func (c *testPeer) Removed(reason string) {
	c.mu.Lock()
	c.removed = append(c.removed, reason)
	c.mu.Unlock()
}

func (c *testPeer) run() {
	defer close(c.worker)
	select {
	case <-c.ready:
	case <-c.stop:
		return
	}
	for {
		select {
		case <-c.stop:
			return
		case f := <-c.work:
			f()
		}
	}
}

func (c *testPeer) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.worker
	c.mu.Lock()
	pcs := []*webrtc.PeerConnection{c.pub, c.sub}
	c.mu.Unlock()
	for _, pc := range pcs {
		if pc != nil {
			_ = pc.Close()
		}
	}
	c.wg.Wait()
}

// answer applies a subscriber offer, creating the receiving connection on
// the first one.
func (c *testPeer) answer(o protocol.SDP) {
	c.mu.Lock()
	pc := c.sub
	c.mu.Unlock()
	if pc == nil {
		var err error
		if pc, err = c.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
			c.t.Errorf("%s: new sub pc: %v", c.identity, err)
			return
		}
		pc.OnICECandidate(c.trickleTo(protocol.TargetSubscriber))
		pc.OnTrack(c.onTrack)
		c.mu.Lock()
		c.sub = pc
		c.mu.Unlock()
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.SDP}); err != nil {
		c.t.Errorf("%s: set sub offer: %v", c.identity, err)
		return
	}
	ans, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(ans)
	}
	if err == nil {
		err = c.p.SubAnswer(protocol.SDP{Type: "answer", SDP: ans.SDP})
	}
	if err != nil && !c.p.Left() {
		c.t.Errorf("%s: answer sub offer: %v", c.identity, err)
	}
	c.flushCandidates(protocol.TargetSubscriber, pc)
}

func (c *testPeer) trickleTo(target string) func(*webrtc.ICECandidate) {
	return func(ic *webrtc.ICECandidate) {
		if ic == nil {
			return
		}
		j := ic.ToJSON()
		_ = c.p.Trickle(target, protocol.ICECandidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex})
	}
}

// addServerCandidate applies a server candidate, or holds it until the
// connection has its remote description.
func (c *testPeer) addServerCandidate(tr protocol.Trickle) {
	ic := webrtc.ICECandidateInit{Candidate: tr.Candidate.Candidate, SDPMid: tr.Candidate.SDPMid, SDPMLineIndex: tr.Candidate.SDPMLineIndex}
	c.mu.Lock()
	pc := c.pub
	if tr.Target == protocol.TargetSubscriber {
		pc = c.sub
	}
	if pc == nil || pc.RemoteDescription() == nil {
		c.pending[tr.Target] = append(c.pending[tr.Target], ic)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	_ = pc.AddICECandidate(ic)
}

func (c *testPeer) flushCandidates(target string, pc *webrtc.PeerConnection) {
	c.mu.Lock()
	held := c.pending[target]
	delete(c.pending, target)
	c.mu.Unlock()
	for _, ic := range held {
		_ = pc.AddICECandidate(ic)
	}
}

func (c *testPeer) onTrack(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	n := &atomic.Int64{}
	c.mu.Lock()
	c.recv[track.ID()] = n
	c.mu.Unlock()
	for {
		if _, _, err := track.ReadRTP(); err != nil {
			return
		}
		n.Add(1)
	}
}

// received returns how many packets of track arrived.
func (c *testPeer) received(track string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.recv[track]; n != nil {
		return n.Load()
	}
	return 0
}

// flowing waits until packets of track keep arriving.
func (c *testPeer) flowing(track string) {
	c.t.Helper()
	before := c.received(track)
	eventually(c.t, 10*time.Second, c.identity+" receiving "+track, func() bool { return c.received(track) >= before+10 })
}

// stopped asserts that no packet of track arrives for a while, once the
// in-flight ones are through.
func (c *testPeer) stopped(track string) {
	c.t.Helper()
	time.Sleep(150 * time.Millisecond)
	before := c.received(track)
	time.Sleep(400 * time.Millisecond)
	if after := c.received(track); after != before {
		c.t.Fatalf("%s still receives %s: %d packets in 400 ms", c.identity, track, after-before)
	}
}

// publish publishes one track of codec mime sending 100 packets/s and
// returns its Parley track id once the room announced it.
func (c *testPeer) publish(mime string) string {
	c.t.Helper()
	c.mu.Lock()
	pc := c.pub
	c.mu.Unlock()
	if pc == nil {
		var err error
		if pc, err = c.api.NewPeerConnection(webrtc.Configuration{}); err != nil {
			c.t.Fatal(err)
		}
		pc.OnICECandidate(c.trickleTo(protocol.TargetPublisher))
		c.mu.Lock()
		c.pub = pc
		c.mu.Unlock()
	}
	clientID := c.identity + "-" + mime
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, clientID, "stream-"+c.identity)
	if err != nil {
		c.t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		c.t.Fatal(err)
	}
	var key atomic.Bool
	key.Store(true)
	c.wg.Add(2)
	go c.readRTCP(sender, &key)
	go c.pump(track, &key)
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	ans, err := c.p.Publish(context.Background(), protocol.SDP{Type: "offer", SDP: offer.SDP})
	if err != nil {
		c.t.Fatalf("%s: publish: %v", c.identity, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP}); err != nil {
		c.t.Fatal(err)
	}
	c.flushCandidates(protocol.TargetPublisher, pc)
	var id string
	eventually(c.t, 10*time.Second, c.identity+"'s track published", func() bool {
		for _, ev := range c.eventsOf(protocol.TypeTrackPublished) {
			if ti := ev.(core.TrackInfo); ti.ClientTrackID == clientID {
				id = ti.ID
				return true
			}
		}
		return false
	})
	return id
}

// readRTCP counts PLIs and makes the next packet a keyframe.
func (c *testPeer) readRTCP(sender *webrtc.RTPSender, key *atomic.Bool) {
	defer c.wg.Done()
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				c.plis.Add(1)
				key.Store(true)
			}
		}
	}
}

// pump writes a VP8-shaped packet every 10 ms until the peer closes.
func (c *testPeer) pump(track *webrtc.TrackLocalStaticRTP, key *atomic.Bool) {
	defer c.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(1); ; seq++ {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		payload := make([]byte, 100)
		payload[0], payload[1] = 0x10, 0x01 // VP8 descriptor; P bit set: delta frame
		if key.Swap(false) {
			payload[1] = 0x00
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 900, Marker: true}, Payload: payload}
		if err := track.WriteRTP(pkt); err != nil {
			return
		}
	}
}

// eventsOf returns the data of the events of type typ received so far.
func (c *testPeer) eventsOf(typ string) []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []any
	for _, ev := range c.events {
		if ev.typ == typ {
			out = append(out, ev.data)
		}
	}
	return out
}

// waitEvent waits for an event of type typ for which match holds.
func (c *testPeer) waitEvent(typ string, match func(any) bool) any {
	c.t.Helper()
	var got any
	eventually(c.t, 10*time.Second, c.identity+" getting "+typ, func() bool {
		for _, d := range c.eventsOf(typ) {
			if match == nil || match(d) {
				got = d
				return true
			}
		}
		return false
	})
	return got
}

// removedWith returns the reasons the peer was removed for.
func (c *testPeer) removedWith() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.removed...)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
