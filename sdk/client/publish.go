package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/pion/webrtc/v4"
)

const (
	// maxOfferAttempts bounds how often one offer is re-sent after the
	// signaling connection dropped before the answer came.
	maxOfferAttempts = 3
	// settleTimeout bounds the renegotiation that undoes a failed one.
	settleTimeout = 10 * time.Second
)

// PublishRTP publishes a new track of the given codec (webrtc.MimeTypeOpus,
// MimeTypeVP8, MimeTypeVP9 or MimeTypeH264) that the caller feeds RTP
// packets with WriteRTP or Write. It returns once the publisher connection is
// renegotiated; the track's Parley id follows with Published.
func (c *Client) PublishRTP(ctx context.Context, mime string, opts ...TrackOption) (*LocalTrack, error) {
	capability, err := Capability(mime)
	if err != nil {
		return nil, fmt.Errorf("client: publish: %w", err)
	}
	id, stream := c.trackIDs(capability, opts)
	track, err := webrtc.NewTrackLocalStaticRTP(capability, id, stream)
	if err != nil {
		return nil, fmt.Errorf("client: publish: %w", err)
	}
	return c.PublishTrack(ctx, track)
}

// PublishSample publishes a new track of the given codec that the caller
// feeds encoded frames with WriteSample; the client packetizes them.
func (c *Client) PublishSample(ctx context.Context, mime string, opts ...TrackOption) (*LocalTrack, error) {
	capability, err := Capability(mime)
	if err != nil {
		return nil, fmt.Errorf("client: publish: %w", err)
	}
	id, stream := c.trackIDs(capability, opts)
	track, err := webrtc.NewTrackLocalStaticSample(capability, id, stream)
	if err != nil {
		return nil, fmt.Errorf("client: publish: %w", err)
	}
	return c.PublishTrack(ctx, track)
}

// PublishTrack publishes any pion local track: it adds a send-only
// transceiver to the publisher connection and renegotiates with the server.
// Negotiations are serialized. The track's id must be unique among this
// client's published tracks. A refusal by the server is a *core.Error
// (core.ErrForbidden, core.ErrTooManyTracks, ...).
func (c *Client) PublishTrack(ctx context.Context, track webrtc.TrackLocal) (*LocalTrack, error) {
	lt, err := c.publish(ctx, track)
	if err != nil {
		return nil, fmt.Errorf("client: publish %s: %w", track.ID(), err)
	}
	return lt, nil
}

func (c *Client) trackIDs(capability webrtc.RTPCodecCapability, opts []TrackOption) (string, string) {
	var tc trackConfig
	for _, o := range opts {
		o(&tc)
	}
	if tc.id == "" {
		kind, _, _ := strings.Cut(strings.ToLower(capability.MimeType), "/")
		tc.id = kind + "-" + core.NewSecret(5)
	}
	if tc.streamID == "" {
		c.mu.Lock()
		tc.streamID = c.room.self.ID
		c.mu.Unlock()
		if tc.streamID == "" {
			tc.streamID = "parley"
		}
	}
	return tc.id, tc.streamID
}

func (c *Client) publish(ctx context.Context, track webrtc.TrackLocal) (*LocalTrack, error) {
	if err := c.acquirePub(ctx); err != nil {
		return nil, err
	}
	defer c.releasePub()
	p, err := c.pubPeer()
	if err != nil {
		return nil, err
	}
	lt := newLocalTrack(c, track)
	c.mu.Lock()
	if _, dup := c.local[track.ID()]; dup {
		c.mu.Unlock()
		return nil, ErrDuplicateTrack
	}
	c.local[track.ID()] = lt
	c.mu.Unlock()
	tr, err := p.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		c.forget(lt)
		return nil, fmt.Errorf("add transceiver: %w", err)
	}
	lt.sender = tr.Sender()
	if !c.spawn(lt.readRTCP) {
		c.forget(lt)
		return nil, ErrClosed
	}
	if err := c.negotiatePub(ctx, p); err != nil {
		c.forget(lt)
		if rmErr := p.pc.RemoveTrack(lt.sender); rmErr != nil {
			c.log.Debug("removing refused track", "error", rmErr)
		}
		if p.pc.RemoteDescription() == nil && isServerError(err) {
			c.resetPub(p) // refused first offer: the server holds nothing
		} else {
			c.settlePub(p)
		}
		return nil, err
	}
	return lt, nil
}

// Unpublish stops publishing a track: it sends unpublish (once the track's
// Parley id is known), removes the track's sender and renegotiates.
func (c *Client) Unpublish(ctx context.Context, t *LocalTrack) error {
	if err := c.unpublish(ctx, t); err != nil {
		return fmt.Errorf("client: unpublish %s: %w", t.ClientTrackID(), err)
	}
	return nil
}

func (c *Client) unpublish(ctx context.Context, t *LocalTrack) error {
	if err := c.acquirePub(ctx); err != nil {
		return err
	}
	defer c.releasePub()
	c.mu.Lock()
	p, mine := c.pub, c.local[t.ClientTrackID()] == t
	c.mu.Unlock()
	if !mine || p == nil {
		return ErrUnknownTrack
	}
	if id := t.ID(); id != "" {
		err := c.call(ctx, protocol.TypeUnpublish, protocol.UnpublishRequest{TrackID: id}, nil)
		if err != nil && !errors.Is(err, core.ErrNotFound) {
			return err
		}
	}
	c.forget(t)
	if err := p.pc.RemoveTrack(t.sender); err != nil {
		return fmt.Errorf("remove track: %w", err)
	}
	if err := c.negotiatePub(ctx, p); err != nil {
		c.settlePub(p)
		return err
	}
	return nil
}

// negotiatePub offers the publisher connection's current transceivers and
// applies the answer. The caller holds pubSem.
func (c *Client) negotiatePub(ctx context.Context, p *peer) error {
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	// After a failed exchange the previous offer is still pending: pion
	// cannot roll a local offer back. This offer differs from the pending
	// one only in the directions of the transceivers removed since, so the
	// server's answer to it completes the pending one too.
	if p.pc.SignalingState() == webrtc.SignalingStateStable {
		if err := p.pc.SetLocalDescription(offer); err != nil {
			return fmt.Errorf("set local offer: %w", err)
		}
	}
	req := protocol.PublishRequest{Offer: protocol.SDP{Type: "offer", SDP: offer.SDP}}
	var resp protocol.PublishResponse
	for attempt := 1; ; attempt++ {
		err = c.call(ctx, protocol.TypePublish, req, &resp)
		// When the connection dropped the server may or may not have seen
		// the offer; offering the same description again is harmless.
		if err == nil || !errors.Is(err, ErrDisconnected) || attempt == maxOfferAttempts {
			break
		}
	}
	if err != nil {
		return err
	}
	answer := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: resp.Answer.SDP}
	if err := p.pc.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("set remote answer: %w", err)
	}
	p.remoteSet()
	p.openLocal()
	return nil
}

// settlePub brings the publisher connection back to a negotiated state after
// a failed negotiation. If that fails too, publishing is over for this
// client. The caller holds pubSem.
func (c *Client) settlePub(p *peer) {
	if p.pc.SignalingState() == webrtc.SignalingStateStable && p.pc.RemoteDescription() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, settleTimeout)
	defer cancel()
	if err := c.negotiatePub(ctx, p); err != nil {
		c.log.Warn("publisher connection could not be renegotiated", "error", err)
		c.mu.Lock()
		c.pubErr = fmt.Errorf("%w: %w", ErrPublisherFailed, err)
		c.mu.Unlock()
	}
}

// resetPub drops a publisher connection that was never negotiated, so the
// next publish starts a fresh one.
func (c *Client) resetPub(p *peer) {
	c.mu.Lock()
	if c.pub == p {
		c.pub = nil
	}
	c.mu.Unlock()
	p.close()
}

// pubPeer returns the publisher connection, creating it on first use.
func (c *Client) pubPeer() (*peer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrClosed
	case !c.joined:
		return nil, ErrNotConnected
	case c.pubErr != nil:
		return nil, c.pubErr
	case !c.room.self.Grants.CanPublish:
		return nil, &core.Error{Code: core.CodeForbidden, Message: "token does not grant publishing"}
	case c.pub != nil:
		return c.pub, nil
	}
	p, err := c.newPeer(protocol.TargetPublisher, c.iceServers)
	if err != nil {
		return nil, err
	}
	c.pub = p
	return p, nil
}

func (c *Client) forget(t *LocalTrack) {
	c.mu.Lock()
	if c.local[t.ClientTrackID()] == t {
		delete(c.local, t.ClientTrackID())
	}
	c.mu.Unlock()
}

func (c *Client) acquirePub(ctx context.Context) error {
	select {
	case c.pubSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

func (c *Client) releasePub() { <-c.pubSem }

// LocalTracks returns the tracks this client publishes.
func (c *Client) LocalTracks() []*LocalTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := make([]*LocalTrack, 0, len(c.local))
	for _, t := range c.local {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *LocalTrack) int { return strings.Compare(a.ClientTrackID(), b.ClientTrackID()) })
	return ts
}
