package sfu

import (
	"fmt"
	"net"
	"time"
)

// Defaults used by DefaultConfig.
const (
	DefaultMediaPort              = 7072
	DefaultPacketCache            = 1024
	DefaultKeyframeThrottle       = 500 * time.Millisecond
	DefaultICEDisconnectedTimeout = 2 * time.Second
	DefaultICEFailedTimeout       = 3 * time.Second
	DefaultICEKeepalive           = time.Second
)

// Config configures the media engine. The zero value is not usable; start
// from DefaultConfig.
type Config struct {
	// ListenIP is the IPv4 address the media UDP socket binds; "" means all
	// interfaces.
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
func DefaultConfig() Config {
	return Config{
		MediaPort:              DefaultMediaPort,
		PacketCache:            DefaultPacketCache,
		KeyframeThrottle:       DefaultKeyframeThrottle,
		ICEDisconnectedTimeout: DefaultICEDisconnectedTimeout,
		ICEFailedTimeout:       DefaultICEFailedTimeout,
		ICEKeepalive:           DefaultICEKeepalive,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.ListenIP != "" {
		ip := net.ParseIP(c.ListenIP)
		if ip == nil || ip.To4() == nil {
			return fmt.Errorf("%w: listen_ip %q is not an IPv4 address", ErrInvalidConfig, c.ListenIP)
		}
	}
	if c.MediaPort < 0 || c.MediaPort > 65535 {
		return fmt.Errorf("%w: media_port %d out of range 0..65535", ErrInvalidConfig, c.MediaPort)
	}
	for _, s := range c.PublicIPs {
		if net.ParseIP(s) == nil {
			return fmt.Errorf("%w: public_ips entry %q is not an IP address", ErrInvalidConfig, s)
		}
	}
	if n := c.PacketCache; n < 64 || n > 65536 || n&(n-1) != 0 {
		return fmt.Errorf("%w: packet_cache %d must be a power of two in 64..65536", ErrInvalidConfig, n)
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"keyframe_throttle", c.KeyframeThrottle},
		{"ice_disconnected_timeout", c.ICEDisconnectedTimeout},
		{"ice_failed_timeout", c.ICEFailedTimeout},
		{"ice_keepalive", c.ICEKeepalive},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return fmt.Errorf("%w: %s must be positive, got %s", ErrInvalidConfig, d.name, d.d)
		}
	}
	return nil
}

// audioCacheSize is the packet cache size for audio tracks: a quarter of the
// video size, at least 64.
func (c Config) audioCacheSize() int {
	return max(c.PacketCache/4, 64)
}
