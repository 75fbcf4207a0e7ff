// Package raftstore is Parley's replicated cluster state: a hashicorp/raft
// node per parley process, with raft-wal as log and stable store, a file
// snapshot store and a deterministic state machine, reachable by its peers
// over mutual TLS. A Store implements core.ClusterState and the optional
// core interfaces (ClusterNodes, ConsistentReader, ClusterWatcher,
// Drainer) as well as core.Presence.
//
// # State
//
// The state machine holds the node registry (id, raft address, public URL,
// drain and down marks), room claims (owner node, epoch, creation time,
// metadata), presence (participant, identity, session, room, node, join
// time, published tracks), the plugin set with its module bytes, the
// presence journal with the webhook pipeline's cursor, outbox and
// dead-letter list, the cluster's webhook signing keys, the server API's
// keys and idempotency records, and the de-duplication window.
//
// Every change is a typed Command, encoded as a version byte, a kind byte
// and JSON (command.go), carrying a request id. The state machine applies
// a request id at most once: it remembers the result of the last 20000
// request ids (in the snapshot too) and answers a repeat with the first
// result. That is what makes ErrLeadershipLost ("outcome unknown") safe to
// retry, and Store methods retry it themselves within Config.ApplyTimeout.
// Apply does no I/O, reads no clock (times come from the proposer, in the
// command header) and walks maps in sorted order, so every replica reaches
// the same state and emits the same events.
//
// Plugin modules are kept in the replicated state itself, keyed by their
// sha256, and reach it through the log in chunks of ModuleChunkSize
// (ModuleChunk) before the plugin record that names them (PutPlugin). The
// alternative, a content-addressed side store next to the log, would need
// its own transfer, retention and snapshot protocol for a few megabytes
// that change rarely; in the state they replicate, snapshot and restore
// with everything else, a module used by several plugins is stored once,
// and it is dropped when the last plugin using it goes.
//
// # Presence journal and webhook outbox
//
// Every presence change the state machine applies is appended to the
// presence journal with a gap-free sequence and a stable id (EntryID,
// derived from log index, sequence, kind and participant): joined, left,
// track_published and track_unpublished from Presence commands;
// room_started when ClaimRoom creates a claim; room_finished when a claim
// is released (ReleaseRoom, reason "released") or its node's rooms are
// (NodeDown, RegisterNode.Started: the NodeDown reason). Room changes sent
// through Presence are ignored: in a cluster the claim is the source of
// truth. Ends come in order: for each participant of a finishing room,
// track_unpublished for each remaining track, then left; then
// room_finished. Store.ReleaseRoom commits the node's queued presence
// before the release, so real leaves precede it; presence still recorded
// then ends with reason "room_released".
//
// The webhook pipeline on the leader reads the journal after its cursor
// (PresenceJournal, WebhookCursor) and in one EnqueueWebhooks command
// moves the cursor and enqueues the webhooks the plugins asked for. The
// command is a compare-and-set on the cursor, so a deposed leader's step
// fails with ErrConflict instead of enqueueing twice, and webhook ids
// already pending or dead are ignored. SettleWebhooks acknowledges
// delivered webhooks and dead-letters failed ones; ClearWebhooks and
// RetryWebhooks serve the operator. Bounds: 100000 pending (beyond, new
// webhooks go dead with "outbox full"), 10000 dead letters (oldest
// evicted, counted), 100000 journal entries past the cursor (evicted ones
// counted as dropped).
//
// # Keys and idempotency
//
// RotateSigningKey installs an Ed25519 key that the proposer generated
// (the state machine draws no randomness): it becomes active, the
// previous active key stays inactive, and anything older goes;
// RetireSigningKeys drops the inactive one. The leader creates the first
// key when it finds none (EnsureSigningKey, a RotateSigningKey that is
// ignored when a key exists). PutAPIKey and DeleteAPIKey manage the
// server API's keys. ReserveIdempotency, CompleteIdempotency and
// ForgetIdempotency keep idempotency records: expired ones (by command
// time) are evicted when those commands apply, and the table is bounded
// at 10000 records and 32 MiB of results, oldest evicted first. Private
// keys and API secrets live in the replicated state and its snapshots,
// which the data directory's permissions and the cluster's mutual TLS
// protect; the Store never logs them.
//
// # Reads and writes
//
// Writes (Apply and the typed helpers: ClaimRoom, ReleaseRoom,
// RecordPresence, PutPlugin, SetDraining, ...) work on every node. A
// follower forwards the encoded command to the leader over the cluster
// transport and the leader answers with the state machine's result; both
// wait out elections for at most Config.ApplyTimeout. Reads answer from the
// local replica. Sync makes them linearizable: the leader commits a
// barrier (which only a leader in contact with a majority can) and names
// the last command it applied, and the caller's node waits until it has
// applied that far. A node cut off from the majority fails Sync rather
// than serve stale state.
//
// Committed changes reach WatchCluster callbacks on every node, outside
// Apply, on one goroutine per watcher.
//
// # Transport and security
//
// Each node listens on one TCP address for raft's own protocol and for the
// forwarding RPC; a byte after the TLS handshake tells them apart. Both
// sides present certificates and verify that they chain to the cluster
// CA: either one that every node derives from the cluster secret
// (GenerateSecret; HKDF-SHA256 of the secret seeds the CA's Ed25519 key,
// and each node issues itself a leaf at start), or an operator's CA
// (TLSFiles). A process without the secret cannot join, read or forward.
//
// # Failures
//
// The leader learns from raft's replication which peers it cannot reach
// (no heartbeats are written to the log). After Config.FailureGrace it
// commits a NodeDown: the node's rooms are released and its participants'
// presence ended, and those ends are journalled like any leave so that
// webhooks for them go out. A node that starts again registers with
// RegisterNode.Started, which clears what its earlier process left.
//
// A watchdog on the leader times a barrier whenever it has had no
// completed write for Config.WatchdogInterval; if the barrier takes longer
// than Config.WatchdogTimeout, the node fences itself off the transport so
// that the others elect a new leader, and reports Fatal (see Store.Fatal).
//
// # Wiring
//
// A node builds a Config from DefaultConfig, its node id, raft address,
// public URL, data directory, cluster secret and either the bootstrap
// peers (ParsePeers of --peers) or --join addresses; Open starts the node,
// WaitReady waits for a leader and the node's registration, and Shutdown
// stops it. To drain: SetDraining(true), move the clients, Leave, then
// Shutdown. The CLI uses GenerateSecret for `parley cluster init` and
// Admin for `parley cluster status` and `parley cluster remove`.
//
// # Rolling upgrades
//
// Every node registers the highest command kind its binary knows
// (RegisterNode.MaxKind). A proposer refuses a command of a kind some
// registered, live node does not know, with ErrUpgradePending (code
// unavailable), instead of letting that replica record it as a bad command
// and drift. Upgrade every node, one at a time; features that need new
// kinds (webhook outbox, signing keys, API keys, idempotency records)
// start working once the last node has registered with the new binary.
package raftstore
