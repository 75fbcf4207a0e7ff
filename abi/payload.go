package abi

import "encoding/json"

// Error codes a plugin may put in a denial. They are the client-visible
// codes of Parley's signaling protocol; the host maps any other value to
// CodeForbidden (CodeInvalidToken for auth).
const (
	CodeInvalidToken  = "invalid_token"
	CodeTokenExpired  = "token_expired"
	CodeForbidden     = "forbidden"
	CodeRoomFull      = "room_full"
	CodeTooManyTracks = "too_many_tracks"
	CodeRateLimited   = "rate_limited"
	CodeNotFound      = "not_found"
	CodeUnavailable   = "unavailable"
)

// DenialCodes lists the codes a plugin may return.
var DenialCodes = []string{
	CodeInvalidToken, CodeTokenExpired, CodeForbidden, CodeRoomFull,
	CodeTooManyTracks, CodeRateLimited, CodeNotFound, CodeUnavailable,
}

// ValidDenialCode reports whether code is one of DenialCodes.
func ValidDenialCode(code string) bool {
	for _, c := range DenialCodes {
		if c == code {
			return true
		}
	}
	return false
}

// Grants are what a participant may do in its room.
type Grants struct {
	CanPublish     bool `json:"can_publish"`
	CanSubscribe   bool `json:"can_subscribe"`
	CanPublishData bool `json:"can_publish_data"`
}

// Claims are the verified identity of a participant.
type Claims struct {
	Identity  string `json:"identity"`
	Name      string `json:"name,omitempty"`
	Room      string `json:"room"`
	Grants    Grants `json:"grants"`
	Metadata  string `json:"metadata,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"` // Unix seconds; 0 = none
	// Role is an application role ("host", "viewer" ...) for policy
	// plugins. Auth plugins set it; see docs/abi.md for how it travels.
	Role string `json:"role,omitempty"`
}

// Track describes a media track being published or subscribed to.
type Track struct {
	ID            string `json:"id,omitempty"`
	ClientTrackID string `json:"client_track_id,omitempty"`
	ParticipantID string `json:"participant_id,omitempty"` // the publisher
	Identity      string `json:"identity,omitempty"`       // the publisher
	Kind          string `json:"kind"`                     // "audio" or "video"
	MimeType      string `json:"mime_type,omitempty"`
	StreamID      string `json:"stream_id,omitempty"`
}

// InitRequest is the input of HookInit.
type InitRequest struct {
	ABI     string `json:"abi"`     // Version of the host, "1.0"
	Plugin  string `json:"plugin"`  // the name the operator gave the plugin
	Version string `json:"version"` // the version the operator gave the plugin
	// Capabilities granted to the plugin.
	Capabilities []Capability `json:"capabilities"`
}

// InitResult is the optional output of HookInit.
type InitResult struct {
	// Hooks, when not empty, are the hooks the plugin serves; exported
	// hooks not listed are never called. Empty means every exported hook.
	Hooks []Hook `json:"hooks,omitempty"`
}

// AuthRequest is the input of HookAuth.
type AuthRequest struct {
	Token      string `json:"token"`
	Host       string `json:"host,omitempty"`        // the HTTP host the client reached, when known
	RemoteAddr string `json:"remote_addr,omitempty"` // the client's address, when known
	// Claims are set when an earlier plugin of the chain accepted the
	// token; this plugin may then only deny or skip.
	Claims *Claims `json:"claims,omitempty"`
}

// AuthResult is the output of HookAuth. Exactly one of Allow and Skip may
// be true; neither means deny.
type AuthResult struct {
	Allow  bool    `json:"allow"`
	Skip   bool    `json:"skip,omitempty"`   // not this plugin's kind of token: ask the next
	Code   string  `json:"code,omitempty"`   // on deny; CodeInvalidToken if empty
	Reason string  `json:"reason,omitempty"` // on deny, shown to the client
	Claims *Claims `json:"claims,omitempty"` // on allow
}

// JoinRequest is the input of HookJoin.
type JoinRequest struct {
	Room          string `json:"room"`
	ParticipantID string `json:"participant_id"`
	Claims        Claims `json:"claims"`
	Participants  int    `json:"participants"` // already in the room
	Host          string `json:"host,omitempty"`
}

// PublishRequest is the input of HookPublish.
type PublishRequest struct {
	Room          string `json:"room"`
	ParticipantID string `json:"participant_id"`
	Claims        Claims `json:"claims"`
	Track         Track  `json:"track"`
	Host          string `json:"host,omitempty"`
}

// SubscribeRequest is the input of HookSubscribe: ParticipantID and Claims
// are the subscriber's, Track is the publisher's.
type SubscribeRequest struct {
	Room          string `json:"room"`
	ParticipantID string `json:"participant_id"`
	Claims        Claims `json:"claims"`
	Track         Track  `json:"track"`
	Host          string `json:"host,omitempty"`
}

// Presence event kinds. Joined and left concern a participant; room
// started and finished a room (the participant fields are empty); track
// published and unpublished a track (TrackID and TrackKind are set, and
// the participant fields name the publisher).
const (
	PresenceJoined           = "joined"
	PresenceLeft             = "left"
	PresenceRoomStarted      = "room_started"
	PresenceRoomFinished     = "room_finished"
	PresenceTrackPublished   = "track_published"
	PresenceTrackUnpublished = "track_unpublished"
)

// PresenceKinds lists every presence kind of this ABI version. A host may
// add kinds in a minor version; plugins ignore kinds they do not know.
var PresenceKinds = []string{PresenceJoined, PresenceLeft, PresenceRoomStarted,
	PresenceRoomFinished, PresenceTrackPublished, PresenceTrackUnpublished}

// PresenceEvent is the input of HookPresence.
type PresenceEvent struct {
	ID            string `json:"id"`   // stable per event: the same event always has the same id
	Kind          string `json:"kind"` // one of PresenceKinds
	Room          string `json:"room"`
	Identity      string `json:"identity"`       // empty for room events
	ParticipantID string `json:"participant_id"` // empty for room events
	Node          string `json:"node,omitempty"`
	Metadata      string `json:"metadata,omitempty"`
	At            int64  `json:"at"` // Unix milliseconds
	// Reason says why a participant left (leave, disconnected, kicked,
	// shutdown) or a room finished (closed, node_failed).
	Reason    string `json:"reason,omitempty"`
	Site      string `json:"site,omitempty"`       // the site (web host) the room belongs to, when known
	TrackID   string `json:"track_id,omitempty"`   // track events: the Parley track id
	TrackKind string `json:"track_kind,omitempty"` // track events: "audio" or "video"
}

// Decision is the output of HookJoin, HookPublish and HookSubscribe.
type Decision struct {
	Allow  bool   `json:"allow"`
	Code   string `json:"code,omitempty"`   // on deny: one of DenialCodes; CodeForbidden if empty
	Reason string `json:"reason,omitempty"` // on deny: shown to the client
	// Grants, on an allowed join, narrow what the participant may do; they
	// never widen the token's grants.
	Grants *Grants `json:"grants,omitempty"`
	// MaxBitrate, on allow, caps what the participant may publish, in
	// bits per second; 0 means no cap from this plugin.
	MaxBitrate int64 `json:"max_bitrate,omitempty"`
	// Metadata, on an allowed join, replaces the participant's metadata.
	Metadata *string `json:"metadata,omitempty"`
}

// Allow returns a Decision that allows.
func Allow() Decision { return Decision{Allow: true} }

// Deny returns a Decision that denies with the given code and reason.
func Deny(code, reason string) Decision { return Decision{Code: code, Reason: reason} }

// WebhookRequest is the payload of ModuleWebhook.webhook_send: one HTTP
// POST the host delivers (or queues for delivery) on the plugin's behalf.
type WebhookRequest struct {
	// ID identifies the message for receivers to de-duplicate; keep it
	// stable for the same event and target. The host derives one from the
	// call's input when empty.
	ID string `json:"id,omitempty"`
	// Target is an operator-visible name of the receiver, for logs.
	Target string `json:"target,omitempty"`
	// URL is where to POST; http or https only.
	URL string `json:"url"`
	// Event is the event type, e.g. "participant.joined".
	Event string `json:"event,omitempty"`
	// Body is the JSON document to send.
	Body json.RawMessage `json:"body"`
	// Headers are extra request headers. The host sets Content-Type and
	// the webhook-id/-timestamp/-signature headers itself.
	Headers map[string]string `json:"headers,omitempty"`
	// Secret, when set, is the receiver's HMAC key ("whsec_" + base64, or
	// raw text); the host signs the message with it.
	Secret string `json:"secret,omitempty"`
}
