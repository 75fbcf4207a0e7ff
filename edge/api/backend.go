package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/room"
)

// Room describes a room in API answers.
type Room struct {
	Name            string `json:"name"`
	Participants    int    `json:"participants"`
	Tracks          int    `json:"tracks"` // published tracks
	MaxParticipants int    `json:"max_participants,omitempty"`
	Metadata        string `json:"metadata,omitempty"`
	// EmptyTimeout is how long (seconds) the room stays after its last
	// participant left; 0 means it goes at once.
	EmptyTimeout int       `json:"empty_timeout,omitempty"`
	Node         string    `json:"node,omitempty"` // the node hosting it
	Created      time.Time `json:"created,omitzero"`
}

// RoomOptions are what POST /v1/rooms may set.
type RoomOptions struct {
	MaxParticipants int
	Metadata        string
	EmptyTimeout    time.Duration
}

// Participant describes a participant in API answers.
type Participant = room.ParticipantInfo

// Rooms is what the API needs to manage the rooms of this node. Methods
// are called from HTTP handlers, concurrently. Errors carry core codes
// (not_found, conflict, ...), which the API maps to HTTP statuses.
type Rooms interface {
	// ListRooms lists the rooms; on a cluster, every room of the cluster
	// from an up-to-date replica.
	ListRooms(ctx context.Context) ([]Room, error)
	// GetRoom describes a room of this node.
	GetRoom(ctx context.Context, name string) (Room, error)
	// CreateRoom creates (and on a cluster claims) a room on this node;
	// an existing room is a conflict.
	CreateRoom(ctx context.Context, name string, opts RoomOptions) (Room, error)
	// CloseRoom removes every participant and ends the room.
	CloseRoom(ctx context.Context, name, reason string) error
}

// Participants is what the API needs to manage the participants of this
// node's rooms. Methods are called from HTTP handlers, concurrently.
type Participants interface {
	ListParticipants(ctx context.Context, room string) ([]Participant, error)
	GetParticipant(ctx context.Context, room, id string) (Participant, error)
	// RemoveParticipant disconnects a participant; its presence ends.
	RemoveParticipant(ctx context.Context, room, id, reason string) error
	// UpdateGrants replaces a participant's permissions and returns it.
	UpdateGrants(ctx context.Context, room, id string, g core.Grants) (Participant, error)
	// MuteTrack stops (muted) or resumes forwarding a published track.
	MuteTrack(ctx context.Context, room, participant, track string, muted bool) error
	// SendData delivers payload to the participants named in to (every
	// participant when to is empty) and returns how many got it.
	SendData(ctx context.Context, room string, to []string, payload json.RawMessage) (int, error)
}

// Plugins is the node's plugin administration (the same methods as
// edge.PluginAdmin). Methods are called from HTTP handlers, concurrently.
type Plugins interface {
	PluginList() any
	PluginLoad(ctx context.Context, name string, module, manifest []byte) (any, error)
	PluginUnload(ctx context.Context, name string) error
	PluginReload(ctx context.Context) (any, error)
}

// Webhooks is the node's webhook outbox administration. Methods are called
// from HTTP handlers, concurrently.
type Webhooks interface {
	List(ctx context.Context, dead bool, host string) ([]core.Webhook, error)
	Clear(ctx context.Context, host string, dead bool) (int, error)
	Retry(ctx context.Context, host string) (int, error)
}

// Keys stores API keys. APIKey is called on every authenticated request
// and must be fast (a local read). Methods are called concurrently.
type Keys interface {
	APIKeys() []core.APIKey
	APIKey(id string) (core.APIKey, bool)
	PutAPIKey(ctx context.Context, k core.APIKey) error
	DeleteAPIKey(ctx context.Context, id string) error
}

// SigningKeys manages the keys webhooks are signed with. Methods are
// called concurrently.
type SigningKeys interface {
	SigningKeys() []core.SigningKey
	RotateSigningKey(ctx context.Context) (core.SigningKey, error)
	RetireSigningKeys(ctx context.Context) (int, error)
}

// Idempotency keeps the responses of requests made with an
// Idempotency-Key. Methods are called concurrently.
type Idempotency interface {
	// ReserveIdempotency stores rec (Done false) unless a live record with
	// rec.Key exists; it returns the record now stored and whether rec
	// was reserved.
	ReserveIdempotency(ctx context.Context, rec core.IdempotencyRecord, ttl time.Duration) (core.IdempotencyRecord, bool, error)
	// CompleteIdempotency stores the outcome of a reserved request.
	CompleteIdempotency(ctx context.Context, rec core.IdempotencyRecord) error
	// ForgetIdempotency drops a record (its request ran without a
	// response worth keeping).
	ForgetIdempotency(ctx context.Context, key string) error
	// Idempotency returns the live record with key.
	Idempotency(key string) (core.IdempotencyRecord, bool)
}

// Cluster tells the API where a room's requests run. Methods are called
// concurrently.
type Cluster interface {
	// RoomOwner returns the base HTTP URL (scheme://host:port) of the node
	// that owns room when that is another node; remote is false when the
	// room is this node's or nobody's. It may confirm with the cluster
	// that its answer is current (an error means it could not).
	RoomOwner(ctx context.Context, room string) (url string, remote bool, err error)
}
