package core

import (
	"context"
	"time"
)

// TrackKind is the media kind of a track.
type TrackKind string

// Track kinds.
const (
	KindAudio TrackKind = "audio"
	KindVideo TrackKind = "video"
)

// TrackInfo describes a published track.
type TrackInfo struct {
	ID            string    `json:"id"`              // Parley track id, "TR_..."
	ClientTrackID string    `json:"client_track_id"` // the publisher's own (msid) track id
	ParticipantID string    `json:"participant_id"`
	Identity      string    `json:"identity"`
	Kind          TrackKind `json:"kind"`
	MimeType      string    `json:"mime_type"`
	StreamID      string    `json:"stream_id"`
}

// PresenceKind tells whether a participant arrived or went.
type PresenceKind string

// Presence event kinds.
const (
	PresenceJoined PresenceKind = "joined"
	PresenceLeft   PresenceKind = "left"
)

// PresenceEvent records a participant entering or leaving a room.
type PresenceEvent struct {
	Kind          PresenceKind
	Room          string
	Identity      string
	ParticipantID string
	Node          string
	Metadata      string
	At            time.Time
	Reason        string // why a participant left: "leave", "disconnected", "kicked", "shutdown"
}

// Presence receives presence events.
//
// Presence is called from the control plane after the change took effect and
// must not block for long; implementations queue slow work. Failures are the
// implementation's to log: presence fails open.
type Presence interface {
	Presence(ctx context.Context, ev PresenceEvent)
}
