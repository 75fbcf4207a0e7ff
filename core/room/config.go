// Package room is Parley's control plane: rooms, the participants in them,
// what each may do, and which published track goes to which subscriber. It
// asks the core's Policy before every join, publish and subscribe, reports
// presence, and drives the media plane (core/sfu) accordingly. It never
// touches packets.
package room

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/sfu"
)

// Config holds the control plane's limits. The zero value is not usable;
// start from DefaultConfig.
type Config struct {
	// NodeID names this node in presence events.
	NodeID string `json:"-"`
	// MaxParticipants is the most participants one room holds.
	MaxParticipants int `json:"max_participants"`
	// MaxTracks is the most tracks one participant publishes at once.
	MaxTracks int `json:"max_tracks"`
	// MaxDataPayload is the largest data message payload, in bytes.
	MaxDataPayload int `json:"max_data_payload"`
	// EmptyTimeout is how long a room made with Manager.CreateRoom stays
	// while nobody is in it, unless its RoomOptions name another timeout.
	// Rooms made by a join go as soon as they empty.
	EmptyTimeout time.Duration `json:"empty_timeout"`
}

// DefaultEmptyTimeout is the default Config.EmptyTimeout: five minutes.
const DefaultEmptyTimeout = 5 * time.Minute

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{MaxParticipants: 100, MaxTracks: 8, MaxDataPayload: 16 << 10, EmptyTimeout: DefaultEmptyTimeout}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxParticipants < 1:
		return fmt.Errorf("room: max_participants must be at least 1, got %d", c.MaxParticipants)
	case c.MaxTracks < 0:
		return fmt.Errorf("room: max_tracks must not be negative, got %d", c.MaxTracks)
	case c.MaxDataPayload < 1:
		return fmt.Errorf("room: max_data_payload must be at least 1, got %d", c.MaxDataPayload)
	case c.EmptyTimeout <= 0:
		return fmt.Errorf("room: empty_timeout must be positive, got %s", c.EmptyTimeout)
	}
	return nil
}

// Deps are what a Manager works with. Engine is required; a nil Policy
// allows what tokens grant, a nil Presence discards events, a nil Log
// discards logs. A nil Cluster keeps every room on this node; with one,
// rooms are placed across the cluster (see Manager.Join and Evict).
type Deps struct {
	Engine   *sfu.Engine
	Policy   core.Policy
	Presence core.Presence
	Cluster  core.ClusterState
	Log      *slog.Logger
}

var errNoEngine = errors.New("room: deps.Engine is required")

func (d Deps) withDefaults() (Deps, error) {
	if d.Engine == nil {
		return d, errNoEngine
	}
	if d.Policy == nil {
		d.Policy = core.AllowAll{}
	}
	if d.Presence == nil {
		d.Presence = discardPresence{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

type discardPresence struct{}

func (discardPresence) Presence(context.Context, core.PresenceEvent) {}
