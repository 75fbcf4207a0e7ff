package client

import (
	"errors"
	"fmt"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// Sentinel errors returned by the client. Errors refused by the server are
// *core.Error values instead; match them with errors.Is against the core
// sentinels (core.ErrForbidden, core.ErrNotFound, ...).
var (
	// ErrClosed is returned by calls on a client that was closed or left.
	ErrClosed = errors.New("client closed")

	// ErrNotConnected is returned by calls that need a joined session before
	// Connect has succeeded.
	ErrNotConnected = errors.New("client not connected")

	// ErrAlreadyConnected is returned by a second call to Connect.
	ErrAlreadyConnected = errors.New("client already connected")

	// ErrDisconnected is returned by a request whose signaling connection
	// dropped before the response arrived. The request may or may not have
	// reached the server.
	ErrDisconnected = errors.New("signaling connection lost")

	// ErrResumeFailed is the close reason when the session could not be
	// resumed after the signaling connection dropped.
	ErrResumeFailed = errors.New("resume failed")

	// ErrServerClosed is the close reason when the server ended the session
	// with a closing event. When the event names a code, the error also
	// matches the corresponding *core.Error (for example core.ErrUnavailable
	// on shutdown).
	ErrServerClosed = errors.New("closed by server")

	// ErrUnsupportedCodec is returned when publishing with a codec the client
	// does not know.
	ErrUnsupportedCodec = errors.New("unsupported codec")

	// ErrDuplicateTrack is returned when publishing a track whose id is
	// already published by this client.
	ErrDuplicateTrack = errors.New("track id already published")

	// ErrUnknownTrack is returned when unpublishing a track this client does
	// not publish.
	ErrUnknownTrack = errors.New("track not published by this client")

	// ErrUnsupportedWrite is returned by a LocalTrack write method that the
	// underlying track does not support (WriteSample on an RTP track, for
	// example).
	ErrUnsupportedWrite = errors.New("write not supported by this track")

	// ErrPublisherFailed is returned by publishing calls after the publisher
	// peer connection was left in a state the client could not recover from.
	ErrPublisherFailed = errors.New("publisher connection failed")
)

// serverClosedError is the close reason for a closing event.
func serverClosedError(ev protocol.Closing) error {
	err := fmt.Errorf("%w: %s", ErrServerClosed, ev.Reason)
	if ev.Code != "" {
		err = fmt.Errorf("%w: %w", ErrServerClosed, &core.Error{Code: ev.Code, Message: ev.Reason})
	}
	return &closedError{ev: ev, err: err}
}

// closedError carries the closing event that ended a session.
type closedError struct {
	ev  protocol.Closing
	err error
}

func (e *closedError) Error() string { return e.err.Error() }
func (e *closedError) Unwrap() error { return e.err }

// ServerClosing returns the closing event behind err (a close reason
// matching ErrServerClosed, as OnClose and Err report it), so a caller can
// tell why it was removed: Reason is "kicked" (the server API removed the
// participant), "room_closed" (the server API closed the room) or
// "replaced" (the same identity joined elsewhere) when Code is
// session_expired, and Detail carries the operator's words, if any.
func ServerClosing(err error) (Closing, bool) {
	var ce *closedError
	if errors.As(err, &ce) {
		return ce.ev, true
	}
	return Closing{}, false
}
