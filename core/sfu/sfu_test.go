package sfu

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
)

// checkClean fails when a receiver saw corrupt, reordered or gapped packets.
func checkClean(t *testing.T, name string, r *recvTrack, allowJumps bool) {
	t.Helper()
	s := r.snapshot()
	if s.corrupt != 0 || s.outOfOrder != 0 || s.seqGaps != 0 || (!allowJumps && s.counterJumps != 0) {
		t.Errorf("%s: %s", name, r)
	}
}

// waitPackets waits until r received n more unique packets than now.
func waitPackets(t *testing.T, r *recvTrack, n int, what string) {
	t.Helper()
	base := r.snapshot().unique
	waitFor(t, 10*time.Second, what, func() bool { return r.snapshot().unique >= base+n })
}

// nackRecent NACKs a packet the client received recently and waits for the
// retransmission with the same payload.
func nackRecent(t *testing.T, c *subClient, r *recvTrack, f *Forwarder) {
	t.Helper()
	served := f.Stats().NacksServed
	r.mu.Lock()
	seq := r.lastSeq - 5
	counter, ok := r.bySeq[seq]
	r.mu.Unlock()
	if !ok {
		t.Fatalf("no packet with seq %d received", seq)
	}
	c.send(&rtcp.TransportLayerNack{MediaSSRC: uint32(r.track.SSRC()), Nacks: []rtcp.NackPair{{PacketID: seq}}})
	waitFor(t, 5*time.Second, "retransmission", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.dups[counter] > 0
	})
	if got := f.Stats().NacksServed; got <= served {
		t.Errorf("NacksServed = %d, want > %d", got, served)
	}
}

func TestForwardToTwoSubscribers(t *testing.T) {
	e := newTestEngine(t)
	pub := newPubClient(t, e)
	pub.addTrack("cam")
	pub.negotiate()
	f := pub.forwarder("cam")
	if f.Kind() != webrtc.RTPCodecTypeVideo || f.Codec().MimeType != webrtc.MimeTypeVP8 || f.StreamID() != "stream-cam" {
		t.Fatalf("forwarder: kind %s codec %s stream %q", f.Kind(), f.Codec().MimeType, f.StreamID())
	}
	subA, subB := newSubClient(t, e, true), newSubClient(t, e, true)
	for _, s := range []*subClient{subA, subB} {
		if err := s.server.Subscribe(f, "PA_owner"); err != nil {
			t.Fatal(err)
		}
	}
	if err := subA.server.Subscribe(f, "PA_owner"); !errors.Is(err, ErrAlreadySubscribed) {
		t.Errorf("second Subscribe: %v, want ErrAlreadySubscribed", err)
	}
	ra, rb := subA.track(f.ID()), subB.track(f.ID())
	waitPackets(t, ra, 50, "50 packets at A")
	waitPackets(t, rb, 50, "50 packets at B")
	checkClean(t, "A", ra, false)
	checkClean(t, "B", rb, false)
	if st := f.Stats(); st.Subscribers != 2 || st.Packets == 0 || st.Bytes == 0 {
		t.Errorf("stats %+v", st)
	}
	if ra.track.StreamID() != "PA_owner" {
		t.Errorf("subscriber stream id %q, want PA_owner", ra.track.StreamID())
	}

	t.Run("pli", func(t *testing.T) {
		time.Sleep(150 * time.Millisecond) // let the throttle window of earlier requests pass
		plis, sent := pub.plis.Load(), f.Stats().KeyframeRequests
		subA.send(&rtcp.PictureLossIndication{MediaSSRC: uint32(ra.track.SSRC())})
		waitFor(t, 5*time.Second, "PLI at the publisher", func() bool { return pub.plis.Load() > plis })
		if f.Stats().KeyframeRequests <= sent {
			t.Errorf("KeyframeRequests did not grow")
		}
	})
	t.Run("nack", func(t *testing.T) { nackRecent(t, subB, rb, f) })
}

func TestREMBPausesOnlyCongestedSubscriber(t *testing.T) {
	e := newTestEngine(t)
	pub := newPubClient(t, e)
	pub.addTrack("cam")
	pub.addTrackMime("mic", webrtc.MimeTypeOpus)
	pub.negotiate()
	f, fm := pub.forwarder("cam"), pub.forwarder("mic")
	if fm.Kind() != webrtc.RTPCodecTypeAudio || fm.Codec().MimeType != webrtc.MimeTypeOpus {
		t.Fatalf("audio forwarder: %s %s", fm.Kind(), fm.Codec().MimeType)
	}
	subA, subB := newSubClient(t, e, true), newSubClient(t, e, true)
	for _, s := range []*subClient{subA, subB} {
		if err := s.server.Subscribe(f, "PA_owner"); err != nil {
			t.Fatal(err)
		}
	}
	if err := subB.server.Subscribe(fm, "PA_owner"); err != nil {
		t.Fatal(err)
	}
	ra, rb, rm := subA.track(f.ID()), subB.track(f.ID()), subB.track(fm.ID())
	waitFor(t, 5*time.Second, "bitrate estimate", func() bool { return f.Bitrate() > 0 })
	ssrcB := uint32(rb.track.SSRC())

	subB.send(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 10_000, SSRCs: []uint32{ssrcB}})
	waitFor(t, 5*time.Second, "paused drops", func() bool { return f.Stats().PausedDrops > 0 })
	if got := subB.server.EstimatedBitrate(); got != 10_000 {
		t.Errorf("EstimatedBitrate = %d", got)
	}
	nb := rb.snapshot().unique
	waitPackets(t, ra, 30, "A keeps receiving")
	waitPackets(t, rm, 10, "B keeps receiving audio")
	if got := rb.snapshot().unique; got > nb+1 {
		t.Fatalf("paused B still received %d packets", got-nb)
	}

	subB.send(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 100_000_000, SSRCs: []uint32{ssrcB}})
	waitPackets(t, rb, 20, "B resumes")
	checkClean(t, "A", ra, false)
	checkClean(t, "B", rb, true)
	checkClean(t, "B audio", rm, false)
	if s := rb.snapshot(); s.counterJumps == 0 || s.jumpToKey != s.counterJumps {
		t.Errorf("B should resume at a keyframe after a skip: %s", rb)
	}
	t.Run("nack after resume", func(t *testing.T) { nackRecent(t, subB, rb, f) })
}

func TestSubscriberRenegotiation(t *testing.T) {
	e := newTestEngine(t)
	pub := newPubClient(t, e)
	pub.addTrack("cam")
	pub.negotiate()
	fa := pub.forwarder("cam")
	sub := newSubClient(t, e, true)
	if err := sub.server.Subscribe(fa, "PA_owner"); err != nil {
		t.Fatal(err)
	}
	ra := sub.track(fa.ID())
	waitPackets(t, ra, 20, "first track")

	// The publisher adds a second track by renegotiating; the subscriber
	// adds it while the first flows.
	pub.addTrack("screen")
	pub.negotiate()
	fb := pub.forwarder("screen")
	if err := sub.server.Subscribe(fb, "PA_owner"); err != nil {
		t.Fatal(err)
	}
	rb := sub.track(fb.ID())
	waitPackets(t, rb, 20, "second track")
	waitPackets(t, ra, 20, "first track after adding the second")
	checkClean(t, "first", ra, false)
	checkClean(t, "second", rb, false)

	if err := sub.server.Unsubscribe(fa.ID()); err != nil {
		t.Fatal(err)
	}
	if err := sub.server.Unsubscribe(fa.ID()); !errors.Is(err, ErrNotSubscribed) || !errors.Is(err, core.ErrNotFound) {
		t.Errorf("second Unsubscribe: %v", err)
	}
	waitFor(t, 5*time.Second, "first track ends at the client", ra.ended.Load)
	waitPackets(t, rb, 20, "second track after removing the first")
	if st := fa.Stats(); st.Subscribers != 0 {
		t.Errorf("first forwarder still has %d subscribers", st.Subscribers)
	}

	// The publisher stops the first track: its forwarder ends, the other
	// keeps flowing.
	pub.removeTrack("cam")
	pub.negotiate()
	waitFor(t, 5*time.Second, "OnTrackEnded", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		return pub.ended[fa.ID()]
	})
	if err := sub.server.Subscribe(fa, "PA_owner"); !errors.Is(err, ErrTrackEnded) {
		t.Errorf("Subscribe to ended track: %v", err)
	}
	waitPackets(t, rb, 20, "second track after the publisher dropped the first")
	checkClean(t, "second", rb, false)
	if got := len(pub.server.Forwarders()); got != 1 {
		t.Errorf("publisher has %d forwarders, want 1", got)
	}
}

func TestSubscriberTrackRemovedBeforeAnswer(t *testing.T) {
	e := newTestEngine(t)
	pub := newPubClient(t, e)
	pub.addTrack("a")
	pub.addTrack("b")
	pub.negotiate()
	fa, fb := pub.forwarder("a"), pub.forwarder("b")
	sub := newSubClient(t, e, false)
	if err := sub.server.Subscribe(fa, "PA_owner"); err != nil {
		t.Fatal(err)
	}
	first := sub.nextOffer()
	// While the offer is outstanding: drop a, add b. No offer goes out
	// until the first is answered.
	if err := sub.server.Unsubscribe(fa.ID()); err != nil {
		t.Fatal(err)
	}
	if err := sub.server.Subscribe(fb, "PA_owner"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := sub.nOffer.Load(); n != 1 {
		t.Fatalf("%d offers while one was outstanding", n)
	}
	if err := sub.server.SetAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "garbage"}); !errors.Is(err, core.ErrInvalidSDP) {
		t.Errorf("garbage answer: %v, want ErrInvalidSDP", err)
	}
	if err := sub.answer(first); err != nil {
		t.Fatal(err)
	}
	second := sub.nextOffer()
	if err := sub.answer(second); err != nil {
		t.Fatal(err)
	}
	rb := sub.track(fb.ID())
	waitPackets(t, rb, 20, "b after the second negotiation")
	checkClean(t, "b", rb, false)

	// Renegotiate makes a fresh offer, or re-sends an unanswered one.
	sub.server.Renegotiate()
	third := sub.nextOffer()
	sub.server.Renegotiate()
	if again := sub.nextOffer(); again.SDP != third.SDP {
		t.Error("Renegotiate with an outstanding offer did not re-send it")
	}
	if err := sub.answer(third); err != nil {
		t.Fatal(err)
	}
	if err := sub.server.SetAnswer(*sub.pc.LocalDescription()); !errors.Is(err, ErrNoPendingOffer) {
		t.Errorf("answer without offer: %v", err)
	}
	waitPackets(t, rb, 20, "b after renegotiation")
}

func TestPublisherRejectsGarbage(t *testing.T) {
	e := newTestEngine(t)
	p, err := e.NewPublisher(PublisherHandlers{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, sdp := range []string{"", "garbage", "v=0\r\nthis is not sdp"} {
		_, err := p.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp})
		if !errors.Is(err, core.ErrInvalidSDP) {
			t.Errorf("HandleOffer(%q) = %v, want ErrInvalidSDP", sdp, err)
		}
	}
	_, err = p.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0"})
	if !errors.Is(err, core.ErrInvalidSDP) {
		t.Errorf("answer as offer: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.HandleOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: testOffer(t)}); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

func TestEnginePort(t *testing.T) {
	e := newTestEngine(t)
	if e.Port() == 0 {
		t.Fatal("port 0")
	}
	cfg := DefaultConfig()
	cfg.MediaPort = e.Port()
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("second engine on the same port")
	}
	cfg.PacketCache = 100
	if _, err := New(cfg, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("invalid config: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.NewPublisher(PublisherHandlers{}); !errors.Is(err, ErrClosed) {
		t.Errorf("NewPublisher after Close: %v", err)
	}
	if _, err := e.NewSubscriber(SubscriberHandlers{}); !errors.Is(err, ErrClosed) {
		t.Errorf("NewSubscriber after Close: %v", err)
	}
}

func TestSubscriberNoOfferWithoutTracks(t *testing.T) {
	e := newTestEngine(t)
	var offers atomic.Int64
	s, err := e.NewSubscriber(SubscriberHandlers{OnOffer: func(webrtc.SessionDescription) { offers.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	s.Renegotiate()
	f := testForwarder(64)
	if err := s.Subscribe(f, "PA_owner"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsubscribe(f.ID()); err != nil { // within the debounce: nothing to offer
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := offers.Load(); n != 0 {
		t.Errorf("%d offers with no track ever negotiated", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(f, "PA_owner"); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if err := s.SetAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: testOffer(t)}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetAnswer after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
