package protocol

import (
	"encoding/json"

	"github.com/parleyhq/parley/core"
)

// Request types, sent by the client. Each is answered by a response with the
// same id and type.
const (
	TypeJoin        = "join"
	TypeResume      = "resume"
	TypePublish     = "publish"
	TypeUnpublish   = "unpublish"
	TypeSubAnswer   = "sub_answer"
	TypeTrickle     = "trickle"
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypeData        = "data"
	TypePing        = "ping"
	TypeLeave       = "leave"
)

// Event types, pushed by the server. TypeTrickle and TypeData are also events.
const (
	TypeParticipantJoined = "participant_joined"
	TypeParticipantLeft   = "participant_left"
	TypeTrackPublished    = "track_published"
	TypeTrackUnpublished  = "track_unpublished"
	TypeSubOffer          = "sub_offer"
	TypeClosing           = "closing"
	TypeError             = "error"
	// TypePermissions tells a participant its grants changed (server API).
	TypePermissions = "permissions"
	// TypeTrackMuted tells everyone in the room, the publisher included,
	// that the server muted or unmuted a track.
	TypeTrackMuted = "track_muted"
)

// ServerSender is the From of a data event the server sent (the server
// API's "send data"); participant ids start with "PA_", so it never names
// a participant.
const ServerSender = "server"

// Peer connection targets for trickle ICE. Each participant has two peer
// connections: one it publishes on (it offers) and one it receives on (the
// server offers).
const (
	TargetPublisher  = "pub"
	TargetSubscriber = "sub"
)

// JoinRequest authenticates and enters the room named by the token.
type JoinRequest struct {
	Token string `json:"token"`
	// AutoSubscribe subscribes to every other participant's tracks as they
	// are published. Nil means true.
	AutoSubscribe *bool  `json:"auto_subscribe,omitempty"`
	Metadata      string `json:"metadata,omitempty"`
}

// JoinResponse is the answer to join and resume.
type JoinResponse struct {
	Participant ParticipantInfo `json:"participant"`
	Room        RoomInfo        `json:"room"`
	Session     SessionInfo     `json:"session"`
	ICEServers  []ICEServer     `json:"ice_servers,omitempty"`
	// AlternateURLs are the signaling URLs of the cluster's other nodes, for
	// a client whose node becomes unreachable: it joins again through one
	// of them. Absent on a single node.
	AlternateURLs []string `json:"alternate_urls,omitempty"`
}

// ParticipantInfo describes a participant to others.
type ParticipantInfo struct {
	ID       string           `json:"id"`
	Identity string           `json:"identity"`
	Name     string           `json:"name,omitempty"`
	Metadata string           `json:"metadata,omitempty"`
	Grants   core.Grants      `json:"grants"`
	Tracks   []core.TrackInfo `json:"tracks"`
	// MutedTracks lists the ids of the tracks the server muted; absent
	// when none is.
	MutedTracks []string `json:"muted_tracks,omitempty"`
}

// RoomInfo is a snapshot of the room at join or resume.
type RoomInfo struct {
	Name         string            `json:"name"`
	Participants []ParticipantInfo `json:"participants"`
}

// SessionInfo lets a client resume after its connection drops.
type SessionInfo struct {
	ID             string `json:"id"`
	ResumeToken    string `json:"resume_token"`
	ResumeGraceMS  int64  `json:"resume_grace_ms"`
	PingIntervalMS int64  `json:"ping_interval_ms"`
}

// ICEServer is a STUN or TURN server the client may use.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ResumeRequest re-attaches a new connection to a session whose connection
// dropped less than the grace period ago.
type ResumeRequest struct {
	SessionID   string `json:"session_id"`
	ResumeToken string `json:"resume_token"`
}

// SDP carries a session description.
type SDP struct {
	Type string `json:"type"` // "offer" or "answer"
	SDP  string `json:"sdp"`
}

// PublishRequest carries the client's offer for its publishing peer
// connection, first or renegotiated. The response carries the answer.
type PublishRequest struct {
	Offer SDP `json:"offer"`
}

// PublishResponse answers a publish request.
type PublishResponse struct {
	Answer SDP `json:"answer"`
}

// UnpublishRequest stops forwarding of the client's track (by the client's
// MediaStreamTrack id, which is also the Parley track id).
type UnpublishRequest struct {
	TrackID string `json:"track_id"`
}

// SubOffer is pushed when the server's receiving peer connection for this
// client needs (re)negotiation. The client answers with sub_answer.
type SubOffer struct {
	Offer SDP `json:"offer"`
}

// SubAnswerRequest answers the latest sub_offer.
type SubAnswerRequest struct {
	Answer SDP `json:"answer"`
}

// ICECandidate is a trickled candidate, as in RTCIceCandidateInit. An empty
// Candidate signals end of candidates.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Trickle carries one ICE candidate for one of the two peer connections,
// in either direction.
type Trickle struct {
	Target    string       `json:"target"`
	Candidate ICECandidate `json:"candidate"`
}

// SubscribeRequest subscribes to, or unsubscribes from, tracks by id.
type SubscribeRequest struct {
	TrackIDs []string `json:"track_ids"`
}

// DataRequest sends a small JSON payload to the room, or to one participant
// when To (a participant id) is set.
type DataRequest struct {
	To      string          `json:"to,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// DataEvent delivers a data message. From is the sender's participant id,
// or ServerSender (and FromIdentity empty) for a message from the server.
type DataEvent struct {
	From         string          `json:"from"`
	FromIdentity string          `json:"from_identity"`
	To           string          `json:"to,omitempty"`
	Payload      json.RawMessage `json:"payload"` // the JSON value sent, as is
}

// PingResponse answers ping with the server's clock in Unix milliseconds.
type PingResponse struct {
	ServerTimeMS int64 `json:"server_time_ms"`
}

// ParticipantLeft is pushed when a participant leaves.
type ParticipantLeft struct {
	ParticipantID string `json:"participant_id"`
	Identity      string `json:"identity"`
	Reason        string `json:"reason"`
}

// TrackUnpublished is pushed when a track stops.
type TrackUnpublished struct {
	TrackID       string `json:"track_id"`
	ParticipantID string `json:"participant_id"`
}

// Closing is pushed before the server closes the connection.
type Closing struct {
	// Reason says why. When the participant was removed from the room
	// (code session_expired) it is the removal reason, one of the
	// Reason* values below; otherwise it is for humans.
	Reason string    `json:"reason"`
	Code   core.Code `json:"code,omitempty"`
	// URL is where to reconnect and join again, for code "redirect": the
	// room moved to another node of the cluster.
	URL string `json:"url,omitempty"`
	// Detail is the operator's own words on a removal (the server API's
	// reason for a kick or a room close), if any.
	Detail string `json:"detail,omitempty"`
}

// Removal reasons a client may see in participant_left and, for its own
// removal, in closing (with code session_expired).
const (
	ReasonKicked     = "kicked"      // removed by the server API
	ReasonRoomClosed = "room_closed" // the room was closed by the server API
	ReasonReplaced   = "replaced"    // the same identity joined again
)

// Permissions is pushed to a participant whose grants changed. What was
// revoked has already taken effect: its tracks were unpublished (no
// can_publish), its subscriptions dropped (no can_subscribe), its data
// messages are refused (no can_publish_data).
type Permissions struct {
	Grants core.Grants `json:"grants"`
}

// TrackMuted is pushed when the server mutes or unmutes a track: while
// muted, no media of the track is forwarded.
type TrackMuted struct {
	TrackID       string `json:"track_id"`
	ParticipantID string `json:"participant_id"`
	Muted         bool   `json:"muted"`
}
