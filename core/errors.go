package core

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Clients branch on codes, so
// existing codes never change meaning; new ones may be added.
type Code string

// Error codes sent to clients. docs/protocol.md lists them with their meaning.
const (
	CodeBadRequest         Code = "bad_request"
	CodeMalformed          Code = "malformed_message"
	CodeUnknownType        Code = "unknown_type"
	CodeUnsupportedVersion Code = "unsupported_version"
	CodeMessageTooLarge    Code = "message_too_large"
	CodeUnauthenticated    Code = "unauthenticated"
	CodeInvalidToken       Code = "invalid_token"
	CodeTokenExpired       Code = "token_expired"
	CodeForbidden          Code = "forbidden"
	CodeNotFound           Code = "not_found"
	CodeConflict           Code = "conflict"
	CodeRoomFull           Code = "room_full"
	CodeTooManyTracks      Code = "too_many_tracks"
	CodeRateLimited        Code = "rate_limited"
	CodeInvalidSDP         Code = "invalid_sdp"
	CodeSessionExpired     Code = "session_expired"
	CodeUnavailable        Code = "unavailable"
	// CodeRedirect means the room lives on another node of the cluster:
	// reconnect to Error.URL and join there.
	CodeRedirect Code = "redirect"
	CodeTimeout  Code = "timeout"
	CodeInternal Code = "internal"
)

// Error is an error with a client-visible code. Two *Error values match under
// errors.Is when their codes are equal, so a wrapped, more detailed error
// still matches the sentinel of its code.
type Error struct {
	Code    Code
	Message string
	Err     error
	// URL is where to reconnect, for CodeRedirect: the signaling URL of
	// the node that hosts the room. Empty otherwise.
	URL string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with the given code and a formatted message. A %w
// verb in format records the cause.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Redirect returns an error with CodeRedirect that sends the client to the
// signaling URL url, for room.
func Redirect(url, room string) *Error {
	return &Error{Code: CodeRedirect, Message: fmt.Sprintf("room %q is hosted at %s", room, url), URL: url}
}

// RedirectURL returns the URL of the first *Error with CodeRedirect in
// err's chain, or "".
func RedirectURL(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeRedirect {
		return e.URL
	}
	return ""
}

// CodeOf returns the code of the first *Error in err's chain, or CodeInternal
// when there is none. CodeOf(nil) is "".
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Sentinel errors, one per code that callers commonly test for.
var (
	ErrUnauthenticated = &Error{Code: CodeUnauthenticated, Message: "authenticate first"}
	ErrInvalidToken    = &Error{Code: CodeInvalidToken, Message: "invalid token"}
	ErrTokenExpired    = &Error{Code: CodeTokenExpired, Message: "token expired"}
	ErrForbidden       = &Error{Code: CodeForbidden, Message: "forbidden"}
	ErrNotFound        = &Error{Code: CodeNotFound, Message: "not found"}
	ErrRoomFull        = &Error{Code: CodeRoomFull, Message: "room is full"}
	ErrTooManyTracks   = &Error{Code: CodeTooManyTracks, Message: "too many tracks"}
	ErrRateLimited     = &Error{Code: CodeRateLimited, Message: "too many requests"}
	ErrInvalidSDP      = &Error{Code: CodeInvalidSDP, Message: "invalid session description"}
	ErrSessionExpired  = &Error{Code: CodeSessionExpired, Message: "session expired or unknown"}
	ErrUnavailable     = &Error{Code: CodeUnavailable, Message: "server unavailable"}
	ErrConflict        = &Error{Code: CodeConflict, Message: "conflict"}
	ErrMessageTooLarge = &Error{Code: CodeMessageTooLarge, Message: "message too large"}
)
