// Package edge is Parley's network face: the HTTP listener with the
// WebSocket signaling endpoint, the HTTP/3 listener with the WebTransport
// signaling endpoint and its certificate, the info and health endpoints and
// the demo page. It adapts transports to core/signal and holds no room logic.
package edge

import (
	"fmt"
	"net"
	"strings"

	"github.com/parleyhq/parley/edge/api"
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
	// TLSCert and TLSKey, when both set, serve HTTPS and WSS, and
	// WebTransport over HTTP/3. Without them HTTP stays plain and HTTP/3 uses
	// a generated short-lived self-signed certificate (see CertHosts).
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// MetricsToken, when set, lets non-loopback scrapers read /metrics with
	// "Authorization: Bearer <token>". Loopback clients need no token.
	MetricsToken string `json:"metrics_token"`
	// AdminToken authenticates the admin API (Authorization: Bearer). The
	// admin API is closed without one.
	AdminToken string `json:"-"`
	// WebTransportAddr is the UDP host:port of the HTTP/3 listener serving
	// WebTransport signaling; port 0 picks a free one, empty disables it.
	WebTransportAddr string `json:"webtransport_addr"`
	// CertHosts are extra DNS names or IPs put in the generated certificate
	// beside 127.0.0.1, ::1 and localhost.
	CertHosts []string `json:"cert_hosts"`
	// API bounds the server API (/v1/rooms, /v1/actions, ...); the zero
	// value means api.DefaultConfig().
	API api.Config `json:"api"`
}

// DefaultConfig listens on 127.0.0.1:7070 (TCP) and 127.0.0.1:7071 (UDP,
// WebTransport).
func DefaultConfig() Config {
	return Config{HTTPAddr: "127.0.0.1:7070", WebTransportAddr: "127.0.0.1:7071", API: api.DefaultConfig()}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("edge: http_addr %q: %w", c.HTTPAddr, err)
	}
	if c.WebTransportAddr != "" {
		if _, _, err := net.SplitHostPort(c.WebTransportAddr); err != nil {
			return fmt.Errorf("edge: webtransport_addr %q: %w", c.WebTransportAddr, err)
		}
	}
	for _, h := range c.CertHosts {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/:* ") && net.ParseIP(h) == nil {
			return fmt.Errorf("edge: cert host %q is not a DNS name or IP address", h)
		}
	}
	if c.API != (api.Config{}) {
		if err := c.API.Validate(); err != nil {
			return fmt.Errorf("edge: %w", err)
		}
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
