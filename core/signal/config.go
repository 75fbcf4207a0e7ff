// Package signal runs Parley's signaling sessions over any message
// transport. A transport adapter (edge/ has WebSocket and WebTransport)
// hands each accepted connection to Server.Serve as a Conn; the session loop
// decodes requests, dispatches each type to its handler, and pushes room
// events back. Sessions outlive a dropped connection for a grace period so a
// client can resume.
package signal

import (
	"fmt"
	"time"

	"github.com/parleyhq/parley/core/protocol"
)

// Config holds the signaling limits. The zero value is not usable; start
// from DefaultConfig.
type Config struct {
	// MaxMessageSize is the largest message accepted, in bytes. Transports
	// enforce it while reading.
	MaxMessageSize int64 `json:"max_message_size"`
	// RateLimit is the sustained requests per second per connection, and
	// RateBurst the burst above it.
	RateLimit float64 `json:"rate_limit"`
	RateBurst int     `json:"rate_burst"`
	// MaxRateViolations closes a connection after this many rate_limited
	// errors in a row.
	MaxRateViolations int `json:"max_rate_violations"`
	// PingInterval is how often clients should ping; a connection silent for
	// three intervals is closed.
	PingInterval time.Duration `json:"ping_interval"`
	// ResumeGrace is how long a participant keeps its place after its
	// connection dropped.
	ResumeGrace time.Duration `json:"resume_grace"`
	// AuthTimeout closes a connection that has not joined in this time.
	AuthTimeout time.Duration `json:"auth_timeout"`
	// WriteQueue is how many outbound messages may wait for a slow client
	// before it is disconnected; WriteTimeout bounds one write.
	WriteQueue   int           `json:"write_queue"`
	WriteTimeout time.Duration `json:"write_timeout"`
	// ICEServers are handed to clients at join (STUN/TURN).
	ICEServers []protocol.ICEServer `json:"ice_servers"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxMessageSize: 64 << 10, RateLimit: 50, RateBurst: 100, MaxRateViolations: 20,
		PingInterval: 10 * time.Second, ResumeGrace: 15 * time.Second, AuthTimeout: 30 * time.Second,
		WriteQueue: 512, WriteTimeout: 10 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxMessageSize < 1024:
		return fmt.Errorf("signal: max_message_size must be at least 1024, got %d", c.MaxMessageSize)
	case c.RateLimit <= 0 || c.RateBurst < 1:
		return fmt.Errorf("signal: rate_limit and rate_burst must be positive")
	case c.MaxRateViolations < 1:
		return fmt.Errorf("signal: max_rate_violations must be at least 1")
	case c.PingInterval < 100*time.Millisecond:
		return fmt.Errorf("signal: ping_interval must be at least 100ms, got %s", c.PingInterval)
	case c.ResumeGrace < 0:
		return fmt.Errorf("signal: resume_grace must not be negative")
	case c.AuthTimeout <= 0:
		return fmt.Errorf("signal: auth_timeout must be positive")
	case c.WriteQueue < 16:
		return fmt.Errorf("signal: write_queue must be at least 16, got %d", c.WriteQueue)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("signal: write_timeout must be positive")
	}
	return nil
}
