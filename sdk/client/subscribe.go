package client

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// answerTimeout bounds the sub_answer request.
const answerTimeout = 10 * time.Second

// RemoteTrack is another participant's track arriving on the subscriber
// connection.
type RemoteTrack struct {
	track    *webrtc.TrackRemote
	receiver *webrtc.RTPReceiver
	info     core.TrackInfo
}

// Track returns the pion track to read media from.
func (t *RemoteTrack) Track() *webrtc.TrackRemote { return t.track }

// Receiver returns the pion receiver of the track.
func (t *RemoteTrack) Receiver() *webrtc.RTPReceiver { return t.receiver }

// Info returns what the room reported about the track. When the track
// arrived before any report of it, Info is filled from the track itself
// (id, participant id, kind, MIME type) and the publisher's identity.
func (t *RemoteTrack) Info() TrackInfo { return t.info }

// ID returns the track's Parley id.
func (t *RemoteTrack) ID() string { return t.info.ID }

// ParticipantID returns the publisher's participant id.
func (t *RemoteTrack) ParticipantID() string { return t.info.ParticipantID }

// Identity returns the publisher's identity.
func (t *RemoteTrack) Identity() string { return t.info.Identity }

// Kind returns whether the track is audio or video.
func (t *RemoteTrack) Kind() core.TrackKind { return t.info.Kind }

// ReadRTP reads the next RTP packet of the track.
func (t *RemoteTrack) ReadRTP() (*rtp.Packet, interceptor.Attributes, error) {
	return t.track.ReadRTP()
}

// onRemoteTrack is pion's OnTrack of the subscriber connection. The
// forwarded track's msid names it: track id = Parley track id, stream id =
// publisher's participant id.
func (c *Client) onRemoteTrack(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	c.mu.Lock()
	info, ok := c.room.tracks[track.ID()]
	if !ok {
		info = core.TrackInfo{
			ID:            track.ID(),
			ParticipantID: track.StreamID(),
			Kind:          core.TrackKind(track.Kind().String()),
			MimeType:      track.Codec().MimeType,
			StreamID:      track.StreamID(),
		}
	}
	if info.Identity == "" {
		if p, ok := c.room.others[info.ParticipantID]; ok {
			info.Identity = p.Identity
		}
	}
	c.mu.Unlock()
	if !ok {
		c.log.Debug("remote track before its report", "track", info.ID, "participant", info.ParticipantID)
	}
	rt := &RemoteTrack{track: track, receiver: receiver, info: info}
	c.emit(func(h *handlers) {
		if h.onTrack != nil {
			h.onTrack(rt)
		}
	})
}

// subPeer returns the subscriber connection, creating it on first use.
func (c *Client) subPeer() (*peer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.sub != nil {
		return c.sub, nil
	}
	p, err := c.newPeer(protocol.TargetSubscriber, c.iceServers)
	if err != nil {
		return nil, err
	}
	p.pc.OnTrack(c.onRemoteTrack)
	c.sub = p
	return p, nil
}

// handleSubOffer answers the server's offer for the subscriber connection.
func (c *Client) handleSubOffer(msg *protocol.Message) error {
	var ev protocol.SubOffer
	if err := protocol.DecodeDataLenient(msg, &ev); err != nil {
		return err
	}
	p, err := c.subPeer()
	if err != nil {
		return err
	}
	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: ev.Offer.SDP}
	if err := p.pc.SetRemoteDescription(offer); err != nil {
		return fmt.Errorf("set remote offer: %w", err)
	}
	p.remoteSet()
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("set local answer: %w", err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, answerTimeout)
	defer cancel()
	req := protocol.SubAnswerRequest{Answer: protocol.SDP{Type: "answer", SDP: answer.SDP}}
	if err := c.call(ctx, protocol.TypeSubAnswer, req, nil); err != nil {
		// After a resume the server offers again; that offer is answered.
		return fmt.Errorf("sub_answer: %w", err)
	}
	p.openLocal()
	return nil
}

// Subscribe asks for the given tracks (by Parley id), for clients that
// joined WithAutoSubscribe(false) or unsubscribed earlier. The tracks arrive
// through OnTrack.
func (c *Client) Subscribe(ctx context.Context, trackIDs ...string) error {
	if err := c.call(ctx, protocol.TypeSubscribe, protocol.SubscribeRequest{TrackIDs: trackIDs}, nil); err != nil {
		return fmt.Errorf("client: subscribe: %w", err)
	}
	return nil
}

// Unsubscribe stops receiving the given tracks (by Parley id).
func (c *Client) Unsubscribe(ctx context.Context, trackIDs ...string) error {
	if err := c.call(ctx, protocol.TypeUnsubscribe, protocol.SubscribeRequest{TrackIDs: trackIDs}, nil); err != nil {
		return fmt.Errorf("client: unsubscribe: %w", err)
	}
	return nil
}

// Participants returns the other participants in the room with their
// tracks, sorted by identity.
func (c *Client) Participants() []Participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.room.participants()
}

// LocalParticipant returns this client's participant as the server reported
// it, with the tracks it publishes. It is zero before Connect succeeds.
func (c *Client) LocalParticipant() Participant {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, _ := c.room.participant(c.room.self.ID)
	return p
}
