package sfu

// CONTRACT FILE: the exported surface core/room relies on. The sfu helper
// replaces the stub bodies with the implementation (and may split this file),
// keeping these names and signatures.

import (
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"
)

// Config configures the media engine. The zero value is not usable; start
// from DefaultConfig.
type Config struct {
	// ListenIP is the address the media UDP socket binds; "" means all interfaces.
	ListenIP string `json:"listen_ip"`
	// MediaPort is the one UDP port all media uses; 0 picks a free port.
	MediaPort int `json:"media_port"`
	// PublicIPs are announced as host candidates instead of the interface
	// addresses (NAT 1:1), for a node behind NAT.
	PublicIPs []string `json:"public_ips"`
	// IncludeLoopback offers loopback candidates (local development, tests).
	IncludeLoopback bool `json:"include_loopback"`
	// PacketCache is how many packets per video track are kept for NACK
	// retransmission (audio keeps a quarter, at least 64). Power of two.
	PacketCache int `json:"packet_cache"`
	// KeyframeThrottle is the minimum interval between keyframe requests sent
	// to a publisher for one track.
	KeyframeThrottle time.Duration `json:"keyframe_throttle"`
	// ICEDisconnectedTimeout and ICEFailedTimeout bound how long a silent
	// peer is kept; ICEKeepalive is the STUN keep-alive interval.
	ICEDisconnectedTimeout time.Duration `json:"ice_disconnected_timeout"`
	ICEFailedTimeout       time.Duration `json:"ice_failed_timeout"`
	ICEKeepalive           time.Duration `json:"ice_keepalive"`
}

// DefaultConfig returns the defaults: media on UDP 7072, all interfaces.
func DefaultConfig() Config { panic("stub") }

// Validate reports the first invalid field.
func (c Config) Validate() error { panic("stub") }

// Engine owns the media UDP socket and creates peer connections on it.
type Engine struct{}

// New opens the media port and returns an engine.
func New(cfg Config, log *slog.Logger) (*Engine, error) { panic("stub") }

// Port returns the UDP port media uses (the chosen one if configured as 0).
func (e *Engine) Port() int { panic("stub") }

// Close closes the socket; peers must be closed first.
func (e *Engine) Close() error { panic("stub") }

// PublisherHandlers are called from pion goroutines and must not block.
type PublisherHandlers struct {
	OnICECandidate func(c *webrtc.ICECandidateInit) // nil c: gathering complete
	OnTrack        func(f *Forwarder)                // a published track's media started
	OnTrackEnded   func(f *Forwarder)                // its media stopped (read error, transceiver stopped)
	OnState        func(s webrtc.PeerConnectionState)
}

// NewPublisher creates the peer connection a client publishes on.
func (e *Engine) NewPublisher(h PublisherHandlers) (*Publisher, error) { panic("stub") }

// Publisher is the peer connection a client publishes on; the client offers.
type Publisher struct{}

// HandleOffer applies the client's (re)offer and returns the answer. A bad
// SDP yields an error matching core.ErrInvalidSDP.
func (p *Publisher) HandleOffer(offer webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	panic("stub")
}

// AddICECandidate adds a trickled remote candidate.
func (p *Publisher) AddICECandidate(c webrtc.ICECandidateInit) error { panic("stub") }

// Close closes the peer connection and stops all its forwarders.
func (p *Publisher) Close() error { panic("stub") }

// OfferedTrack is a media section a client offers to send.
type OfferedTrack struct {
	Mid           string
	Kind          webrtc.RTPCodecType
	StreamID      string // msid stream id
	ClientTrackID string // msid track id
}

// OfferedTracks lists the media sections an offer sends (sendonly or
// sendrecv), so policy can be checked before answering. Garbage yields an
// error matching core.ErrInvalidSDP.
func OfferedTracks(sdp string) ([]OfferedTrack, error) { panic("stub") }

// Forwarder receives one published track and fans it out to subscribers.
type Forwarder struct{}

// ID is the Parley track id ("TR_...").
func (f *Forwarder) ID() string { panic("stub") }

// ClientTrackID is the publisher's msid track id.
func (f *Forwarder) ClientTrackID() string { panic("stub") }

// StreamID is the publisher's msid stream id.
func (f *Forwarder) StreamID() string { panic("stub") }

// Kind is audio or video.
func (f *Forwarder) Kind() webrtc.RTPCodecType { panic("stub") }

// Codec is the negotiated codec.
func (f *Forwarder) Codec() webrtc.RTPCodecParameters { panic("stub") }

// RequestKeyframe asks the publisher for a keyframe (throttled).
func (f *Forwarder) RequestKeyframe() { panic("stub") }

// SubscriberHandlers are called from pion goroutines and must not block.
type SubscriberHandlers struct {
	OnICECandidate func(c *webrtc.ICECandidateInit)
	OnOffer        func(offer webrtc.SessionDescription) // send to the client; answer via SetAnswer
	OnState        func(s webrtc.PeerConnectionState)
}

// NewSubscriber creates the peer connection a client receives on.
func (e *Engine) NewSubscriber(h SubscriberHandlers) (*Subscriber, error) { panic("stub") }

// Subscriber is the peer connection a client receives on; the server offers.
type Subscriber struct{}

// Subscribe starts forwarding f to this subscriber, with stream id streamID
// (the publisher's participant id), and renegotiates.
func (s *Subscriber) Subscribe(f *Forwarder, streamID string) error { panic("stub") }

// Unsubscribe stops forwarding the track with id trackID and renegotiates.
func (s *Subscriber) Unsubscribe(trackID string) error { panic("stub") }

// SetAnswer applies the client's answer to the last offer.
func (s *Subscriber) SetAnswer(answer webrtc.SessionDescription) error { panic("stub") }

// AddICECandidate adds a trickled remote candidate.
func (s *Subscriber) AddICECandidate(c webrtc.ICECandidateInit) error { panic("stub") }

// Renegotiate sends a fresh offer even if nothing changed (after a resume).
func (s *Subscriber) Renegotiate() { panic("stub") }

// Close closes the peer connection.
func (s *Subscriber) Close() error { panic("stub") }
