package client

import (
	"fmt"
	"log/slog"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
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
