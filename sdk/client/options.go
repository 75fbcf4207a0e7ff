package client

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/quic-go/quic-go"
)

// An Option configures a Client. Options are applied in order.
type Option func(*config)

type config struct {
	log           *slog.Logger
	autoSubscribe *bool
	metadata      string
	settings      *webrtc.SettingEngine
	api           *webrtc.API
	iceServers    []webrtc.ICEServer
	dialOptions   *websocket.DialOptions
	reconnect     bool
	transport     Transport
	tls           *tls.Config
	certHashes    [][]byte
	quic          *quic.Config
	err           error // an invalid option, reported by New
}

func defaultConfig() config {
	return config{
		log:       slog.New(slog.DiscardHandler),
		reconnect: true,
	}
}

// WithLogger sets the logger the client reports to. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithAutoSubscribe sets the join request's auto_subscribe flag. With true
// (the server's default) the client receives every other participant's tracks
// as they are published; with false it picks tracks with Subscribe.
func WithAutoSubscribe(on bool) Option {
	return func(c *config) { c.autoSubscribe = &on }
}

// WithMetadata sets the metadata the participant joins with, shown to the
// other participants.
func WithMetadata(md string) Option {
	return func(c *config) { c.metadata = md }
}

// WithSettingEngine sets the pion SettingEngine used to build the client's
// peer connections (network types, ports, timeouts, ...). Ignored when
// WithAPI is given.
func WithSettingEngine(se webrtc.SettingEngine) Option {
	return func(c *config) { c.settings = &se }
}

// WithLoopback adjusts the SettingEngine for a server on the same host, as
// in tests and local development: loopback candidates are gathered, mDNS is
// off and only UDP over IPv4 is used. Apply it after WithSettingEngine.
func WithLoopback() Option {
	return func(c *config) {
		if c.settings == nil {
			c.settings = &webrtc.SettingEngine{}
		}
		c.settings.SetIncludeLoopbackCandidate(true)
		c.settings.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		c.settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
}

// WithAPI sets the pion API the peer connections are created from, for full
// control of codecs and interceptors. The API's media engine must offer the
// codecs the client publishes and the server forwards. By default the client
// registers pion's default codecs and interceptors.
func WithAPI(api *webrtc.API) Option {
	return func(c *config) { c.api = api }
}

// WithICEServers sets the STUN and TURN servers the peer connections use,
// replacing those the server announces in its join response.
func WithICEServers(servers ...webrtc.ICEServer) Option {
	return func(c *config) { c.iceServers = servers }
}

// WithDialOptions sets the options of the WebSocket dial (HTTP client,
// headers), for every connection including reconnects.
func WithDialOptions(opts *websocket.DialOptions) Option {
	return func(c *config) { c.dialOptions = opts }
}

// WithTransport chooses the signaling transport instead of letting the URL's
// scheme decide (ws, wss and http: WebSocket; https: WebTransport). With
// TransportWebSocket an https URL dials a secure WebSocket; TransportWebTransport
// needs an https URL.
func WithTransport(t Transport) Option {
	return func(c *config) { c.transport = t }
}

// WithTLSConfig sets the TLS configuration of secure connections (wss and
// WebTransport): root CAs, client certificates, server name... It is cloned,
// and its NextProtos is replaced with the transport's (http/1.1 or h3). For
// WebSocket it applies unless WithDialOptions gives an HTTPClient of its own.
func WithTLSConfig(tc *tls.Config) Option {
	return func(c *config) { c.tls = tc }
}

// WithCertHash pins the server's certificate by the SHA-256 of its DER
// leaf, as browsers' serverCertificateHashes do for WebTransport: a
// certificate with one of these hashes is accepted, if it is valid now,
// without checking its chain, issuer or names; any other is refused. Pass
// every hash GET /v1/cert-hash lists (see FetchCertHashes), so a rotation
// announced in advance does not break reconnection. It applies to wss as
// well, like WithTLSConfig, and replaces hashes given before.
func WithCertHash(hashes ...[]byte) Option {
	return func(c *config) {
		c.certHashes = nil
		for _, h := range hashes {
			if len(h) != sha256.Size {
				c.err = fmt.Errorf("certificate hash of %d bytes: want %d (sha-256)", len(h), sha256.Size)
				return
			}
			c.certHashes = append(c.certHashes, append([]byte(nil), h...))
		}
	}
}

// WithQUICConfig sets the QUIC configuration of WebTransport connections
// (idle timeout, keep-alive, ...). It is cloned; datagrams and stream reset
// partial delivery, which WebTransport needs, are always enabled. By default
// quic-go's defaults apply.
func WithQUICConfig(qc *quic.Config) Option {
	return func(c *config) { c.quic = qc }
}

// WithReconnect turns automatic session resumption on (the default) or off.
// With it off, a dropped signaling connection closes the client.
func WithReconnect(on bool) Option {
	return func(c *config) { c.reconnect = on }
}

// newAPI builds the pion API from the configuration: the given API, or one
// with default codecs and interceptors and the configured SettingEngine.
func (cfg *config) newAPI() (*webrtc.API, error) {
	if cfg.api != nil {
		return cfg.api, nil
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("register codecs: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		return nil, fmt.Errorf("register interceptors: %w", err)
	}
	se := webrtc.SettingEngine{}
	if cfg.settings != nil {
		se = *cfg.settings
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}
