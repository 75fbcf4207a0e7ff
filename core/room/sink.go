package room

import "github.com/parleyhq/parley/core/protocol"

// Sink receives the events the room pushes to one participant (the protocol
// event types of core/protocol with their payloads). The signaling session
// implements it.
//
// Send is called with the room's lock held and must not block: queue, or
// drop and disconnect a client that does not keep up.
//
// Removed is called once, without locks held, when the participant has left
// the room for any reason (its own leave, a replacement, media failure,
// shutdown), so the session can end.
type Sink interface {
	Send(eventType string, data any)
	Removed(reason string)
}

// Leave reasons, as sent in participant_left and presence events.
const (
	ReasonLeave        = "leave"
	ReasonDisconnected = "disconnected"
	ReasonReplaced     = protocol.ReasonReplaced
	ReasonKicked       = protocol.ReasonKicked // RemoveParticipant
	// ReasonRoomClosed: CloseRoom removed everyone.
	ReasonRoomClosed  = protocol.ReasonRoomClosed
	ReasonShutdown    = "shutdown"
	ReasonMediaFailed = "media_failed"
	// ReasonMoved: the room left this node of the cluster (the node
	// drains, or the cluster gave the room to another node); the client
	// is told where to join again (Participant.MovedTo).
	ReasonMoved = "moved"
)

// Reasons a room finishes, in room_finished presence events.
const (
	FinishEmpty    = "empty"    // its last participant left (or a created room's empty timeout passed)
	FinishClosed   = "closed"   // CloseRoom
	FinishShutdown = "shutdown" // the node stopped (Manager.Close)
	FinishMoved    = "moved"    // the room left this node of the cluster (drain, eviction)
)
