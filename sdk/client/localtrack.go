package client

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/parleyhq/parley/core"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// codecs are the codecs PublishRTP and PublishSample know, by lowercase MIME
// type. Their parameters match pion's default media engine, so they bind.
var codecs = map[string]webrtc.RTPCodecCapability{
	"audio/opus": {MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
	"video/vp8":  {MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
	"video/vp9":  {MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"},
	"video/h264": {
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	},
}

// Capability returns the codec capability PublishRTP and PublishSample use
// for a MIME type: webrtc.MimeTypeOpus, MimeTypeVP8, MimeTypeVP9 or
// MimeTypeH264 (case does not matter).
func Capability(mime string) (webrtc.RTPCodecCapability, error) {
	c, ok := codecs[strings.ToLower(mime)]
	if !ok {
		return webrtc.RTPCodecCapability{}, fmt.Errorf("%w: %q", ErrUnsupportedCodec, mime)
	}
	return c, nil
}

// A TrackOption configures a track created by PublishRTP or PublishSample.
type TrackOption func(*trackConfig)

type trackConfig struct {
	id       string
	streamID string
}

// WithTrackID sets the track's own (msid) id, which the server reports as
// client_track_id. The default is random.
func WithTrackID(id string) TrackOption { return func(t *trackConfig) { t.id = id } }

// WithStreamID sets the track's msid stream id. The default is the
// participant id, so a participant's tracks share a stream.
func WithStreamID(id string) TrackOption { return func(t *trackConfig) { t.streamID = id } }

// LocalTrack is a track this client publishes. Write media into it with
// WriteRTP, Write (raw RTP) or WriteSample, depending on how it was made.
type LocalTrack struct {
	c      *Client
	track  webrtc.TrackLocal
	sender *webrtc.RTPSender

	mu         sync.Mutex
	info       core.TrackInfo
	published  chan struct{} // closed when the server reports the track
	onKeyframe func()
	removed    bool
}

func newLocalTrack(c *Client, track webrtc.TrackLocal) *LocalTrack {
	return &LocalTrack{c: c, track: track, published: make(chan struct{})}
}

// ID returns the track's Parley id ("TR_..."), or "" until the server has
// reported the track (see Published).
func (t *LocalTrack) ID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info.ID
}

// ClientTrackID returns the track's own (msid) id.
func (t *LocalTrack) ClientTrackID() string { return t.track.ID() }

// Kind returns whether the track is audio or video.
func (t *LocalTrack) Kind() webrtc.RTPCodecType { return t.track.Kind() }

// Track returns the pion track media is written to.
func (t *LocalTrack) Track() webrtc.TrackLocal { return t.track }

// Sender returns the pion RTP sender of the track.
func (t *LocalTrack) Sender() *webrtc.RTPSender { return t.sender }

// Info returns what the server reported about the track, and whether it has.
func (t *LocalTrack) Info() (TrackInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info, t.info.ID != ""
}

// Published is closed when the server reports the track published (with
// the track_published event), which it does once media arrives: write media
// before waiting on it.
func (t *LocalTrack) Published() <-chan struct{} { return t.published }

// WaitPublished waits until the server reports the track and returns the
// report.
func (t *LocalTrack) WaitPublished(ctx context.Context) (TrackInfo, error) {
	select {
	case <-t.published:
		info, _ := t.Info()
		return info, nil
	case <-ctx.Done():
		return core.TrackInfo{}, fmt.Errorf("client: wait for track %s: %w", t.track.ID(), ctx.Err())
	case <-t.c.done:
		return core.TrackInfo{}, fmt.Errorf("client: wait for track %s: %w", t.track.ID(), ErrClosed)
	}
}

func (t *LocalTrack) setPublished(info core.TrackInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.info.ID == "" {
		t.info = info
		select {
		case <-t.published: // published again after a move
		default:
			close(t.published)
		}
	}
}

// OnKeyframeRequest sets a callback for the server asking for a keyframe
// (PLI or FIR) on a video track. It runs on the callback goroutine like the
// client's other callbacks.
func (t *LocalTrack) OnKeyframeRequest(f func()) {
	t.mu.Lock()
	t.onKeyframe = f
	t.mu.Unlock()
}

// WriteRTP sends an RTP packet on a track created by PublishRTP (or any
// track with a WriteRTP method). The SSRC and payload type are rewritten to
// the negotiated ones. Packets written before the track is negotiated are
// dropped.
func (t *LocalTrack) WriteRTP(p *rtp.Packet) error {
	w, ok := t.track.(interface{ WriteRTP(*rtp.Packet) error })
	if !ok {
		return ErrUnsupportedWrite
	}
	return w.WriteRTP(p)
}

// Write sends one marshaled RTP packet, as WriteRTP does.
func (t *LocalTrack) Write(b []byte) (int, error) {
	w, ok := t.track.(interface{ Write([]byte) (int, error) })
	if !ok {
		return 0, ErrUnsupportedWrite
	}
	return w.Write(b)
}

// WriteSample sends one media sample (an encoded frame) on a track created
// by PublishSample, packetizing it.
func (t *LocalTrack) WriteSample(s media.Sample) error {
	w, ok := t.track.(interface{ WriteSample(media.Sample) error })
	if !ok {
		return ErrUnsupportedWrite
	}
	return w.WriteSample(s)
}

// Unpublish stops publishing the track. See Client.Unpublish.
func (t *LocalTrack) Unpublish(ctx context.Context) error { return t.c.Unpublish(ctx, t) }

// readRTCP drains the sender's RTCP, which pion's interceptors (NACK
// responses, reports) need, and reports keyframe requests. It ends when the
// sender stops.
func (t *LocalTrack) readRTCP() {
	for {
		pkts, _, err := t.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				t.c.emit(func(*handlers) {
					t.mu.Lock()
					f := t.onKeyframe
					t.mu.Unlock()
					if f != nil {
						f()
					}
				})
			}
		}
	}
}
