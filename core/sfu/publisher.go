package sfu

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
)

// PublisherHandlers are called from pion goroutines and must not block.
//
// OnTrackEnded is called when a track's media stops on its own (read error,
// transceiver stopped by a renegotiation); it is not called for the tracks
// Publisher.Close stops, since the caller of Close already knows.
type PublisherHandlers struct {
	OnICECandidate func(c *webrtc.ICECandidateInit) // nil c: gathering complete
	OnTrack        func(f *Forwarder)               // a published track's media started
	OnTrackEnded   func(f *Forwarder)               // its media stopped (read error, transceiver stopped)
	OnState        func(s webrtc.PeerConnectionState)
}

// Publisher is the peer connection a client publishes on; the client offers.
type Publisher struct {
	e     *Engine
	pc    *webrtc.PeerConnection
	h     PublisherHandlers
	log   *slog.Logger
	cands candidateBuffer

	mu         sync.Mutex // serializes negotiation; guards the fields below
	closed     bool
	forwarders map[string]*Forwarder

	wg sync.WaitGroup // forwarder goroutines
}

// NewPublisher creates the peer connection a client publishes on.
func (e *Engine) NewPublisher(h PublisherHandlers) (*Publisher, error) {
	pc, err := e.newConnection(e.pubAPI)
	if err != nil {
		return nil, err
	}
	p := &Publisher{e: e, pc: pc, h: h, log: e.log, forwarders: make(map[string]*Forwarder)}
	pc.OnICECandidate(onICECandidate(h.OnICECandidate))
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if h.OnState != nil {
			h.OnState(s)
		}
	})
	pc.OnTrack(p.onTrack)
	return p, nil
}

// HandleOffer applies the client's (re)offer and returns the answer. A bad
// SDP yields an error matching core.ErrInvalidSDP. ICE candidates follow
// through OnICECandidate.
func (p *Publisher) HandleOffer(offer webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	if offer.Type != webrtc.SDPTypeOffer {
		return webrtc.SessionDescription{}, core.Errorf(core.CodeInvalidSDP, "expected an offer, got %q", offer.Type)
	}
	if _, err := parseSDP(offer.SDP); err != nil {
		return webrtc.SessionDescription{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return webrtc.SessionDescription{}, ErrClosed
	}
	if err := p.pc.SetRemoteDescription(offer); err != nil {
		return webrtc.SessionDescription{}, core.Errorf(core.CodeInvalidSDP, "apply offer: %w", err)
	}
	if err := p.cands.flush(p.pc); err != nil {
		p.log.Debug("publisher candidates", "err", err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return webrtc.SessionDescription{}, core.Errorf(core.CodeInvalidSDP, "create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("set local answer: %w", err)
	}
	return answer, nil
}

// AddICECandidate adds a trickled remote candidate.
func (p *Publisher) AddICECandidate(c webrtc.ICECandidateInit) error {
	return p.cands.add(p.pc, c)
}

// Close closes the peer connection and stops all its forwarders.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	forwarders := p.forwarders
	p.forwarders = nil
	p.mu.Unlock()
	var err error
	if cerr := p.pc.Close(); cerr != nil {
		err = fmt.Errorf("close publisher connection: %w", cerr)
	}
	for _, f := range forwarders {
		f.stop()
	}
	p.wg.Wait()
	return err
}

// isClosed reports whether Close was called.
func (p *Publisher) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// onTrack starts a forwarder for a remote track (pion's OnTrack, run on its
// own goroutine).
func (p *Publisher) onTrack(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	f := p.startForwarder(track, receiver)
	if f == nil {
		return
	}
	p.log.Debug("track started", "track", f.id, "kind", f.kind.String(), "codec", f.codec.MimeType)
	announced := make(chan struct{})
	// The waiter reports the end after OnTrack returned, outside p.wg so
	// Close never waits for a handler.
	go func() {
		<-f.Done()
		<-announced
		if !p.isClosed() && p.h.OnTrackEnded != nil {
			p.h.OnTrackEnded(f)
		}
	}()
	if p.h.OnTrack != nil {
		p.h.OnTrack(f)
	}
	close(announced)
}

// startForwarder creates and starts the forwarder of track, nil when closed.
func (p *Publisher) startForwarder(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) *Forwarder {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	cacheSize := p.e.cfg.PacketCache
	if track.Kind() == webrtc.RTPCodecTypeAudio {
		cacheSize = p.e.cfg.audioCacheSize()
	}
	ssrc := uint32(track.SSRC())
	f := newForwarder(forwarderParams{
		id:            core.NewID(core.PrefixTrack),
		clientTrackID: track.ID(),
		streamID:      track.StreamID(),
		mid:           p.midOf(receiver),
		kind:          track.Kind(),
		codec:         track.Codec(),
		cacheSize:     cacheSize,
		throttle:      p.e.cfg.KeyframeThrottle,
		batch:         p.e.batch,
		sendPLI: func() error {
			return p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
		},
		log: p.log,
	})
	p.forwarders[f.id] = f
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		f.readLoop(track)
		p.removeForwarder(f)
	}()
	go func() {
		defer p.wg.Done()
		f.rtcpLoop(receiver)
	}()
	if f.kind == webrtc.RTPCodecTypeVideo {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			f.keyframeLoop()
		}()
	}
	return f
}

// removeForwarder forgets an ended forwarder.
func (p *Publisher) removeForwarder(f *Forwarder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.forwarders, f.id)
}

// midOf returns the mid of the transceiver owning receiver.
func (p *Publisher) midOf(receiver *webrtc.RTPReceiver) string {
	for _, t := range p.pc.GetTransceivers() {
		if t.Receiver() == receiver {
			return t.Mid()
		}
	}
	return ""
}

// Forwarders returns the publisher's live forwarders.
func (p *Publisher) Forwarders() []*Forwarder {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Forwarder, 0, len(p.forwarders))
	for _, f := range p.forwarders {
		out = append(out, f)
	}
	return out
}
