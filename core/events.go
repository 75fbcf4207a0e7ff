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

// PresenceKind names what changed in a room.
type PresenceKind string

// Presence event kinds. Joined and left concern a participant; started and
// finished a room (a room starts when its first participant arrives or the
// server API creates it, and finishes when it is closed or its node dies);
// published and unpublished a track (TrackID, TrackKind set).
const (
	PresenceJoined           PresenceKind = "joined"
	PresenceLeft             PresenceKind = "left"
	PresenceRoomStarted      PresenceKind = "room_started"
	PresenceRoomFinished     PresenceKind = "room_finished"
	PresenceTrackPublished   PresenceKind = "track_published"
	PresenceTrackUnpublished PresenceKind = "track_unpublished"
)

// PresenceKinds lists every presence kind.
var PresenceKinds = []PresenceKind{PresenceJoined, PresenceLeft, PresenceRoomStarted,
	PresenceRoomFinished, PresenceTrackPublished, PresenceTrackUnpublished}

// Valid reports whether k is a known kind.
func (k PresenceKind) Valid() bool {
	for _, v := range PresenceKinds {
		if k == v {
			return true
		}
	}
	return false
}

// PresenceEvent records a change of who is in a room: a participant
// entering or leaving, a room starting or finishing, a track published or
// unpublished. Room events leave the participant fields empty.
type PresenceEvent struct {
	// ID is stable per event once the event is committed to a journal (the
	// cluster's presence journal or a single node's webhook store): the
	// same event always has the same id. Empty before that.
	ID            string
	Kind          PresenceKind
	Room          string
	Identity      string
	ParticipantID string
	Node          string
	Metadata      string
	At            time.Time
	Reason        string    // why a participant left or a room finished: "leave", "disconnected", "kicked", "shutdown", "closed", "node_failed"
	TrackID       string    // track events: the Parley track id
	TrackKind     TrackKind // track events
}

// JournalEntry is a committed presence event at its journal position.
// Seq numbers are assigned in commit order, start at 1 and have no gaps.
type JournalEntry struct {
	Seq   uint64
	Event PresenceEvent
}

// Presence receives presence events.
//
// Presence is called from the control plane after the change took effect and
// must not block for long; implementations queue slow work. Failures are the
// implementation's to log: presence fails open.
type Presence interface {
	Presence(ctx context.Context, ev PresenceEvent)
}

// PresenceFlusher is implemented by a Presence that queues events before
// making them durable (the cluster's presence queue). FlushPresence
// returns once every event handed over before the call is durable, or
// with an error when ctx ends first. The control plane calls it before
// confirming a join, so a node killed right after a client was told it
// joined has still recorded the join, and its departure is reported.
type PresenceFlusher interface {
	FlushPresence(ctx context.Context) error
}
