package core

import (
	"context"
	"time"
)

// Grants are what a token allows its bearer to do in its room.
type Grants struct {
	CanPublish     bool `json:"can_publish"`
	CanSubscribe   bool `json:"can_subscribe"`
	CanPublishData bool `json:"can_publish_data"`
}

// AllGrants allows publishing, subscribing and data messages.
var AllGrants = Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}

// Claims are the verified contents of a client token.
type Claims struct {
	Identity  string    // who the bearer is, unique within a room
	Name      string    // display name, optional
	Room      string    // the room the token admits to
	Grants    Grants    // what the bearer may do there
	Metadata  string    // opaque application data, shown to other participants
	ExpiresAt time.Time // zero means no expiry
}

// Authenticator verifies client tokens.
//
// Authenticate is called once per join, from the connection's goroutine, and
// must be safe for concurrent use. It returns an error matching
// ErrInvalidToken or ErrTokenExpired for a bad token, and any other error
// for an internal failure (which clients see as CodeInternal).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Claims, error)
}
