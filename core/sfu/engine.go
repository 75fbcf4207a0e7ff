package sfu

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Engine owns the media UDP socket and creates peer connections on it. All
// peer connections, publishing and subscribing, share the one socket.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	conn   *net.UDPConn
	batch  *batchConn // conn as the mux sees it: batches fan-out writes
	mux    ice.UDPMux
	pubAPI *webrtc.API
	subAPI *webrtc.API
	// subCodecs are the codecs the subscriber side can send, used to narrow
	// each subscribed track's m-line to its own codec.
	subCodecs []webrtc.RTPCodecParameters

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New opens the media port and returns an engine.
func New(cfg Config, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = discardLogger(log)
	addr := &net.UDPAddr{Port: cfg.MediaPort}
	if cfg.ListenIP != "" {
		addr.IP = net.ParseIP(cfg.ListenIP)
	}
	conn, err := net.ListenUDP("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen media udp %s: %w", addr, err)
	}
	e := &Engine{cfg: cfg, log: log, conn: conn, batch: newBatchConn(conn)}
	loggers := pionLoggerFactory{log: log}
	e.mux = webrtc.NewICEUDPMux(loggers.NewLogger("udpmux"), e.batch)
	se := e.settingEngine(loggers)
	if e.pubAPI, err = newPublisherAPI(se); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("publisher api: %w", err)
	}
	if e.subAPI, e.subCodecs, err = newSubscriberAPI(se); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("subscriber api: %w", err)
	}
	log.Info("media engine listening", "addr", conn.LocalAddr().String())
	return e, nil
}

// settingEngine builds the pion settings shared by both APIs.
func (e *Engine) settingEngine(loggers pionLoggerFactory) webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.LoggerFactory = loggers
	se.SetICEUDPMux(e.mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(e.cfg.IncludeLoopback)
	se.SetICETimeouts(e.cfg.ICEDisconnectedTimeout, e.cfg.ICEFailedTimeout, e.cfg.ICEKeepalive)
	if len(e.cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(e.cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	return se
}

// Port returns the UDP port media uses (the chosen one if configured as 0).
func (e *Engine) Port() int {
	if a, ok := e.conn.LocalAddr().(*net.UDPAddr); ok {
		return a.Port
	}
	return 0
}

// Close closes the socket; peers must be closed first.
func (e *Engine) Close() error {
	e.closed.Store(true)
	e.closeOnce.Do(func() {
		if err := e.mux.Close(); err != nil {
			e.closeErr = fmt.Errorf("close udp mux: %w", err)
		}
		// The mux closes the socket; closing again only reports that.
		_ = e.conn.Close()
	})
	return e.closeErr
}

// newConnection creates a peer connection on api with unified plan.
func (e *Engine) newConnection(api *webrtc.API) (*webrtc.PeerConnection, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{SDPSemantics: webrtc.SDPSemanticsUnifiedPlan})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	return pc, nil
}

// Payload types the engine offers or prefers.
const (
	ptOpus       = 111
	ptVP8        = 96
	ptVP9        = 98
	ptH264       = 102
	ptH264High   = 125
	h264Baseline = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"
	h264Constr   = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
)

// codecs returns the engine's codecs with the given video feedback (and
// audio feedback) attached.
func codecs(videoFB, audioFB []webrtc.RTCPFeedback) []webrtc.RTPCodecParameters {
	video := func(mime string, clock uint32, fmtp string, pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: mime, ClockRate: clock, SDPFmtpLine: fmtp, RTCPFeedback: videoFB,
			},
			PayloadType: pt,
		}
	}
	return []webrtc.RTPCodecParameters{
		{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
				SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: audioFB,
			},
			PayloadType: ptOpus,
		},
		video(webrtc.MimeTypeVP8, 90000, "", ptVP8),
		video(webrtc.MimeTypeVP9, 90000, "profile-id=0", ptVP9),
		video(webrtc.MimeTypeH264, 90000, h264Constr, ptH264High),
		video(webrtc.MimeTypeH264, 90000, h264Baseline, ptH264),
	}
}

// baseVideoFeedback is the rtcp-fb set both sides negotiate for video.
func baseVideoFeedback() []webrtc.RTCPFeedback {
	return []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBNACK},
		{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBGoogREMB},
	}
}

// registerCodecs registers cs on m.
func registerCodecs(m *webrtc.MediaEngine, cs []webrtc.RTPCodecParameters) error {
	for _, c := range cs {
		kind := webrtc.RTPCodecTypeVideo
		if c.MimeType == webrtc.MimeTypeOpus {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := m.RegisterCodec(c, kind); err != nil {
			return fmt.Errorf("register codec %s: %w", c.MimeType, err)
		}
	}
	return nil
}

// newPublisherAPI builds the API publishers connect to: the server NACKs
// lost packets, sends receiver reports and transport-wide congestion
// control feedback.
func newPublisherAPI(se webrtc.SettingEngine) (*webrtc.API, error) {
	twccFB := webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m, codecs(append(baseVideoFeedback(), twccFB), []webrtc.RTCPFeedback{twccFB})); err != nil {
		return nil, err
	}
	for _, uri := range []string{sdp.TransportCCURI, sdp.SDESMidURI} {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, kind); err != nil {
				return nil, fmt.Errorf("register header extension %s: %w", uri, err)
			}
		}
	}
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, fmt.Errorf("nack generator: %w", err)
	}
	ir.Add(gen)
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, fmt.Errorf("receiver reports: %w", err)
	}
	ir.Add(rr)
	tw, err := twcc.NewSenderInterceptor()
	if err != nil {
		return nil, fmt.Errorf("twcc sender: %w", err)
	}
	ir.Add(tw)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// newSubscriberAPI builds the API subscribers connect to: sender reports
// only. NACKs from subscribers are answered from the forwarders' caches,
// not by pion's per-sender responder.
func newSubscriberAPI(se webrtc.SettingEngine) (*webrtc.API, []webrtc.RTPCodecParameters, error) {
	cs := codecs(baseVideoFeedback(), nil)
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m, cs); err != nil {
		return nil, nil, err
	}
	ir := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, nil, fmt.Errorf("sender reports: %w", err)
	}
	ir.Add(sr)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return api, cs, nil
}
