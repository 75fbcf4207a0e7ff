package sfu

import (
	"errors"

	"github.com/parleyhq/parley/core"
)

// Sentinel errors returned by the media engine. Callers test them with
// errors.Is; the ones that carry a core code also match that code's core
// sentinel (for example ErrNotSubscribed matches core.ErrNotFound).
var (
	// ErrClosed is returned by operations on a closed engine, publisher or
	// subscriber.
	ErrClosed = errors.New("sfu: closed")
	// ErrInvalidConfig is wrapped by Config.Validate failures.
	ErrInvalidConfig = errors.New("sfu: invalid config")
	// ErrAlreadySubscribed is returned when a subscriber subscribes to a
	// track it already receives.
	ErrAlreadySubscribed = &core.Error{Code: core.CodeConflict, Message: "track already subscribed"}
	// ErrNotSubscribed is returned when unsubscribing from a track that is
	// not subscribed.
	ErrNotSubscribed = &core.Error{Code: core.CodeNotFound, Message: "track not subscribed"}
	// ErrTrackEnded is returned when subscribing to a forwarder whose media
	// has stopped.
	ErrTrackEnded = &core.Error{Code: core.CodeNotFound, Message: "track ended"}
	// ErrNoPendingOffer is returned by SetAnswer when no offer is awaiting an
	// answer.
	ErrNoPendingOffer = &core.Error{Code: core.CodeConflict, Message: "no offer awaiting an answer"}
	// ErrCodecNotNegotiated is returned when a subscriber's answer leaves no
	// codec usable for a track.
	ErrCodecNotNegotiated = errors.New("sfu: codec not negotiated")
)
