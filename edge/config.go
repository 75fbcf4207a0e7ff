// Package edge is Parley's network face: the HTTP listener with the
// WebSocket signaling endpoint, the info and health endpoints and the landing
// page. It adapts transports to core/signal and holds no room logic.
package edge

import (
	"fmt"
	"net"
	"strings"
)

// Config configures the HTTP face. The zero value is not usable; start from
// DefaultConfig.
type Config struct {
	// HTTPAddr is host:port for HTTP and WebSocket; port 0 picks a free one.
	HTTPAddr string `json:"http_addr"`
	// AllowedOrigins are host patterns (as in path.Match) of web pages
	// allowed to open signaling WebSockets from another origin.
	AllowedOrigins []string `json:"allowed_origins"`
	// Dev allows any origin and serves the development token endpoint.
	Dev bool `json:"dev"`
	// TLSCert and TLSKey, when both set, serve HTTPS and WSS.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// MetricsToken, when set, lets non-loopback scrapers read /metrics with
	// "Authorization: Bearer <token>". Loopback clients need no token.
	MetricsToken string `json:"metrics_token"`
}

// DefaultConfig listens on 127.0.0.1:7070.
func DefaultConfig() Config { return Config{HTTPAddr: "127.0.0.1:7070"} }

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("edge: http_addr %q: %w", c.HTTPAddr, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("edge: tls_cert and tls_key must be set together")
	}
	for _, o := range c.AllowedOrigins {
		if strings.TrimSpace(o) == "" || o == "*" {
			return fmt.Errorf("edge: allowed origin %q is not a host pattern (use --dev to allow any origin)", o)
		}
	}
	return nil
}
