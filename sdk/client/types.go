package client

import (
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// Participant describes a participant in the room, with its published
// tracks. It is the wire type protocol.ParticipantInfo.
type Participant = protocol.ParticipantInfo

// ParticipantLeft reports a participant leaving: its id, identity and the
// reason ("leave", "disconnected", "kicked", "room_closed", "shutdown", ...).
// It is the wire type protocol.ParticipantLeft.
type ParticipantLeft = protocol.ParticipantLeft

// TrackMuted reports that the server muted or unmuted a track (its media
// stops or resumes). It is the wire type protocol.TrackMuted.
type TrackMuted = protocol.TrackMuted

// Closing is the event a server sends before it ends the connection: a
// reason, a code and, for a removal by the server API, the operator's
// detail. It is the wire type protocol.Closing; see ServerClosing.
type Closing = protocol.Closing

// TrackInfo describes a published track: Parley id, the publisher's own
// track id, participant id and identity, kind and MIME type. It is
// core.TrackInfo.
type TrackInfo = core.TrackInfo
