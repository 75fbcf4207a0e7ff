package core

import (
	"context"
	"time"
)

// ClusterNode is one member of the cluster as the control plane sees it.
type ClusterNode struct {
	ID        string `json:"id"`
	PublicURL string `json:"public_url"` // base URL clients are redirected to; "" if not registered yet
	Draining  bool   `json:"draining"`   // takes no new rooms and is about to leave
	Down      bool   `json:"down"`       // declared failed by the leader; its rooms were released
}

// RoomClaim says which node hosts a room.
type RoomClaim struct {
	Room     string    `json:"room"`
	Owner    string    `json:"owner"`     // node id of the owner
	OwnerURL string    `json:"owner_url"` // the owner's public URL at claim time; "" if unknown
	Epoch    uint64    `json:"epoch"`     // unique per claim and increasing: a room that changes hands gets a larger epoch
	Created  time.Time `json:"created"`   // when the current owner claimed it
	Metadata string    `json:"metadata,omitempty"`
}

// OwnedBy reports whether node owns the room under this claim.
func (c RoomClaim) OwnedBy(node string) bool { return c.Owner != "" && c.Owner == node }

// PresenceChange is one presence event together with the signaling session
// that produced it, as recorded in the cluster state.
type PresenceChange struct {
	PresenceEvent
	Session string // signaling session id ("SE_..."); may be empty for left events
}

// ClusterEventKind names a committed change of cluster state.
type ClusterEventKind string

// Cluster event kinds.
const (
	ClusterRoomClaimed    ClusterEventKind = "room_claimed"
	ClusterRoomReleased   ClusterEventKind = "room_released" // Room.Owner is the node that lost it
	ClusterPresence       ClusterEventKind = "presence"      // a participant joined or left (Presence)
	ClusterNodeChanged    ClusterEventKind = "node_changed"  // registered, drain or down state changed
	ClusterNodeRemoved    ClusterEventKind = "node_removed"
	ClusterPluginsChanged ClusterEventKind = "plugins_changed" // Plugin names the plugin put or deleted
	// ClusterResync means the state was replaced (a snapshot was installed)
	// or the watcher fell too far behind and events were dropped: re-read
	// whatever the watcher derives from the cluster state.
	ClusterResync ClusterEventKind = "resync"
)

// ClusterEvent is a change of cluster state after it was committed. Index is
// the replicated-log index of the command that caused it; events of one
// command share an index and arrive in the order the command made them.
type ClusterEvent struct {
	Kind     ClusterEventKind
	Index    uint64
	Room     RoomClaim     // room events
	Presence PresenceEvent // presence events
	Node     ClusterNode   // node events
	Plugin   string        // plugin events
	Reason   string        // why, for releases and removals: "released", "node_failed", "node_removed", ...
}

// ClusterState is the replicated state the control plane needs to place
// rooms on nodes and to record who is where.
//
// All methods are safe for concurrent use. Writes (ClaimRoom, ReleaseRoom,
// RecordPresence) go through consensus: they may take a round trip to the
// cluster leader, wait out an election for a bounded time and then fail with
// an error whose code is CodeUnavailable. A write that fails that way may or
// may not have been committed; repeating it is safe, since claims and
// releases are idempotent. Reads (Room, Node) answer from the local replica
// without waiting and may lag the leader by a few milliseconds; a reader
// that must see every write completed before the read began calls
// ConsistentReader.Sync first.
//
// Writes never block media: the core calls them on the control plane only.
type ClusterState interface {
	// LocalNode returns the id of the node this ClusterState speaks for.
	LocalNode() string

	// ClaimRoom claims room for the local node unless another node owns it
	// already, and returns the claim in force: the local node's new claim,
	// or the existing owner's (compare-and-set: the first claim committed
	// wins, and every node sees the same owner and epoch). metadata is kept
	// with a new claim. A draining local node gets an error with code
	// CodeUnavailable when the room has no owner yet.
	ClaimRoom(ctx context.Context, room, metadata string) (RoomClaim, error)

	// ReleaseRoom gives up the local node's claim on room made at epoch (0:
	// whichever claim the local node holds). Releasing a room that is not
	// claimed is not an error; releasing one that another node owns, or a
	// later claim, fails with code CodeConflict.
	ReleaseRoom(ctx context.Context, room string, epoch uint64) error

	// RecordPresence commits presence changes, in order, as one write. A
	// left change for a participant that is not present is ignored, so
	// replays are harmless.
	RecordPresence(ctx context.Context, changes ...PresenceChange) error

	// Room returns the local replica's claim on room, if any.
	Room(room string) (RoomClaim, bool)

	// Node returns the local replica's record of node id, if any.
	Node(id string) (ClusterNode, bool)
}

// ClusterNodes is implemented by a ClusterState that lists the members, for
// choosing where to send clients when the local node drains.
type ClusterNodes interface {
	// Nodes returns the registered nodes of the local replica, ordered by id.
	Nodes() []ClusterNode
}

// ConsistentReader is implemented by a ClusterState that offers
// linearizable reads.
type ConsistentReader interface {
	// Sync returns once the local replica reflects every write that was
	// committed before Sync was called, as confirmed by a current leader.
	// A node cut off from the majority returns an error with code
	// CodeUnavailable instead of serving stale state.
	Sync(ctx context.Context) error
}

// ClusterWatcher is implemented by a ClusterState that reports committed
// changes.
type ClusterWatcher interface {
	// WatchCluster calls fn for each change committed after the call, in
	// commit order, on one goroutine that the implementation owns, until
	// ctx is done or the implementation shuts down. fn must not block for
	// long: events queue while it runs, and a watcher that falls too far
	// behind gets one ClusterResync event in place of those it missed.
	WatchCluster(ctx context.Context, fn func(ClusterEvent))
}

// Drainer is implemented by a ClusterState that can mark the local node as
// draining.
type Drainer interface {
	// SetDraining marks the local node as draining (no new rooms) or not.
	SetDraining(ctx context.Context, draining bool) error
}
