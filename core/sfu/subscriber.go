package sfu

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
)

// negotiationDebounce is how long the subscriber waits after a change before
// offering, so a burst of changes yields one offer.
const negotiationDebounce = 5 * time.Millisecond

// SubscriberHandlers are called from pion goroutines and must not block.
type SubscriberHandlers struct {
	OnICECandidate func(c *webrtc.ICECandidateInit)
	OnOffer        func(offer webrtc.SessionDescription) // send to the client; answer via SetAnswer
	OnState        func(s webrtc.PeerConnectionState)
}

// Subscriber is the peer connection a client receives on; the server offers.
//
// Negotiation: Subscribe, Unsubscribe and Renegotiate mark negotiation
// needed; after a short debounce the subscriber offers through OnOffer if no
// offer is outstanding, and otherwise offers again once SetAnswer settled
// the outstanding one.
type Subscriber struct {
	e     *Engine
	pc    *webrtc.PeerConnection
	h     SubscriberHandlers
	log   *slog.Logger
	cands candidateBuffer

	mu          sync.Mutex // guards the fields below and serializes pc changes
	closed      bool
	tracks      map[string]*downTrack
	needed      bool // changes not yet offered
	outstanding bool // an offer awaits its answer
	resend      bool // re-send the outstanding offer
	offeredOnce bool
	pending     webrtc.SessionDescription

	estimate atomic.Uint64 // last REMB from the client, bits/s
	kick     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup // down track RTCP goroutines
}

// NewSubscriber creates the peer connection a client receives on.
func (e *Engine) NewSubscriber(h SubscriberHandlers) (*Subscriber, error) {
	pc, err := e.newConnection(e.subAPI)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{
		e: e, pc: pc, h: h, log: e.log,
		tracks: make(map[string]*downTrack),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	pc.OnICECandidate(onICECandidate(h.OnICECandidate))
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if h.OnState != nil {
			h.OnState(st)
		}
	})
	// The negotiation goroutine calls OnOffer, so Close does not wait for
	// it (a handler may wait on the caller of Close); it exits on done.
	go s.negotiateLoop()
	return s, nil
}

// Subscribe starts forwarding f to this subscriber, with stream id streamID
// (the publisher's participant id), and renegotiates.
func (s *Subscriber) Subscribe(f *Forwarder, streamID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case f.ended():
		return ErrTrackEnded
	case s.tracks[f.id] != nil:
		return ErrAlreadySubscribed
	}
	d := newDownTrack(f, s, streamID)
	tr, err := s.pc.AddTransceiverFromTrack(d, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("add transceiver for %s: %w", f.id, err)
	}
	if prefs := s.e.sendCodecs(f.codec.MimeType); len(prefs) > 0 {
		if err := tr.SetCodecPreferences(prefs); err != nil {
			s.log.Debug("codec preferences", "track", f.id, "err", err)
		}
	}
	d.sender = tr.Sender()
	s.tracks[f.id] = d
	f.addDownTrack(d)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		d.rtcpLoop()
	}()
	s.markNeededLocked()
	return nil
}

// Unsubscribe stops forwarding the track with id trackID and renegotiates.
func (s *Subscriber) Unsubscribe(trackID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	d := s.tracks[trackID]
	if d == nil {
		return fmt.Errorf("unsubscribe %s: %w", trackID, ErrNotSubscribed)
	}
	delete(s.tracks, trackID)
	d.f.removeDownTrack(d)
	s.markNeededLocked()
	if err := s.pc.RemoveTrack(d.sender); err != nil {
		return fmt.Errorf("remove track %s: %w", trackID, err)
	}
	return nil
}

// SetAnswer applies the client's answer to the last offer. A bad SDP yields
// an error matching core.ErrInvalidSDP and leaves the offer outstanding.
func (s *Subscriber) SetAnswer(answer webrtc.SessionDescription) error {
	if answer.Type != webrtc.SDPTypeAnswer {
		return core.Errorf(core.CodeInvalidSDP, "expected an answer, got %q", answer.Type)
	}
	if _, err := parseSDP(answer.SDP); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case !s.outstanding:
		return ErrNoPendingOffer
	}
	if err := s.pc.SetRemoteDescription(answer); err != nil {
		return core.Errorf(core.CodeInvalidSDP, "apply answer: %w", err)
	}
	s.outstanding, s.resend = false, false
	if err := s.cands.flush(s.pc); err != nil {
		s.log.Debug("subscriber candidates", "err", err)
	}
	if s.needed {
		s.signal()
	}
	return nil
}

// AddICECandidate adds a trickled remote candidate.
func (s *Subscriber) AddICECandidate(c webrtc.ICECandidateInit) error {
	return s.cands.add(s.pc, c)
}

// Renegotiate sends a fresh offer even if nothing changed (after a resume).
// If an offer is still unanswered it is sent again instead.
func (s *Subscriber) Renegotiate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.outstanding {
		s.resend = true
		s.signal()
		return
	}
	s.markNeededLocked()
}

// EstimatedBitrate returns the last receiver estimate (REMB) the client sent,
// in bits/s, 0 before the first one.
func (s *Subscriber) EstimatedBitrate() uint64 { return s.estimate.Load() }

// Close closes the peer connection.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	tracks := s.tracks
	s.tracks = nil
	close(s.done)
	s.mu.Unlock()
	for _, d := range tracks {
		d.f.removeDownTrack(d)
	}
	var err error
	if cerr := s.pc.Close(); cerr != nil {
		err = fmt.Errorf("close subscriber connection: %w", cerr)
	}
	s.wg.Wait()
	return err
}

// markNeededLocked records a change to offer. s.mu held.
func (s *Subscriber) markNeededLocked() {
	s.needed = true
	s.signal()
}

// signal wakes the negotiation goroutine without blocking.
func (s *Subscriber) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// negotiateLoop turns change signals into offers, one at a time.
func (s *Subscriber) negotiateLoop() {
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
		}
		t := time.NewTimer(negotiationDebounce)
		select {
		case <-s.done:
			t.Stop()
			return
		case <-t.C:
		}
		select { // changes during the debounce are in this offer
		case <-s.kick:
		default:
		}
		if offer, ok := s.nextOffer(); ok && s.h.OnOffer != nil {
			s.h.OnOffer(offer)
		}
	}
}

// nextOffer returns the offer to send now, if any.
func (s *Subscriber) nextOffer() (webrtc.SessionDescription, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return webrtc.SessionDescription{}, false
	}
	if s.outstanding {
		if s.resend {
			s.resend = false
			return s.pending, true
		}
		return webrtc.SessionDescription{}, false // offer again after SetAnswer
	}
	if !s.needed {
		return webrtc.SessionDescription{}, false
	}
	s.needed = false
	if len(s.tracks) == 0 && !s.offeredOnce {
		return webrtc.SessionDescription{}, false // nothing to offer yet
	}
	offer, err := s.pc.CreateOffer(nil)
	if err != nil {
		s.log.Warn("subscriber create offer", "err", err)
		return webrtc.SessionDescription{}, false
	}
	if err := s.pc.SetLocalDescription(offer); err != nil {
		s.log.Warn("subscriber set local offer", "err", err)
		return webrtc.SessionDescription{}, false
	}
	s.pending, s.outstanding, s.offeredOnce = offer, true, true
	return offer, true
}

// videoBitrate sums the incoming bitrates of the video tracks the
// subscriber receives: what its estimate is compared with.
func (s *Subscriber) videoBitrate() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum uint64
	for _, d := range s.tracks {
		if d.f.kind == webrtc.RTPCodecTypeVideo {
			sum += d.f.Bitrate()
		}
	}
	return sum
}

// sendCodecs returns the subscriber-side codecs of mime's kind, those with
// mime itself first. The others stay in the offer on purpose: pion's media
// engine remembers the codecs of the first answer as the only negotiated
// ones, so an m-line narrowed to VP9 would leave a later H.264 track with
// no codec at all. The down track binds to the track's own codec.
func (e *Engine) sendCodecs(mime string) []webrtc.RTPCodecParameters {
	kind, _, _ := strings.Cut(strings.ToLower(mime), "/")
	var first, rest []webrtc.RTPCodecParameters
	for _, c := range e.subCodecs {
		switch {
		case strings.EqualFold(c.MimeType, mime):
			first = append(first, c)
		case strings.HasPrefix(strings.ToLower(c.MimeType), kind+"/"):
			rest = append(rest, c)
		}
	}
	return append(first, rest...)
}
