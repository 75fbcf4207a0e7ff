package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/raftstore"
)

// claimReadyTimeout bounds how long a join waits for the node's cluster
// replica to become ready (a leader known, the node registered).
const claimReadyTimeout = 10 * time.Second

// clusterRef is the control plane's view of the cluster state: the node's
// raftstore.Store once Start has opened it. Before that (and without a
// cluster) writes fail with core.CodeUnavailable and reads find nothing.
// It is also the core.Presence that records presence in the cluster.
type clusterRef struct {
	id string
	s  atomic.Pointer[raftstore.Store]
}

var errNoStore = core.Errorf(core.CodeUnavailable, "cluster state not open yet")

func (c *clusterRef) store() (*raftstore.Store, error) {
	if s := c.s.Load(); s != nil {
		return s, nil
	}
	return nil, errNoStore
}

// LocalNode implements core.ClusterState.
func (c *clusterRef) LocalNode() string { return c.id }

// ClaimRoom implements core.ClusterState. It first waits until the node is
// a registered member, so that its start-up registration (which releases
// what an earlier process left) cannot release the new claim.
func (c *clusterRef) ClaimRoom(ctx context.Context, room, metadata string) (core.RoomClaim, error) {
	s, err := c.store()
	if err != nil {
		return core.RoomClaim{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, claimReadyTimeout)
	defer cancel()
	if err := s.WaitReady(rctx); err != nil {
		return core.RoomClaim{}, fmt.Errorf("node: cluster not ready: %w", err)
	}
	return s.ClaimRoom(ctx, room, metadata)
}

// ReleaseRoom implements core.ClusterState.
func (c *clusterRef) ReleaseRoom(ctx context.Context, room string, epoch uint64) error {
	s, err := c.store()
	if err != nil {
		return err
	}
	return s.ReleaseRoom(ctx, room, epoch)
}

// RecordPresence implements core.ClusterState.
func (c *clusterRef) RecordPresence(ctx context.Context, changes ...core.PresenceChange) error {
	s, err := c.store()
	if err != nil {
		return err
	}
	return s.RecordPresence(ctx, changes...)
}

// Room implements core.ClusterState.
func (c *clusterRef) Room(room string) (core.RoomClaim, bool) {
	if s := c.s.Load(); s != nil {
		return s.Room(room)
	}
	return core.RoomClaim{}, false
}

// Node implements core.ClusterState.
func (c *clusterRef) Node(id string) (core.ClusterNode, bool) {
	if s := c.s.Load(); s != nil {
		return s.Node(id)
	}
	return core.ClusterNode{}, false
}

// Nodes implements core.ClusterNodes.
func (c *clusterRef) Nodes() []core.ClusterNode {
	if s := c.s.Load(); s != nil {
		return s.Nodes()
	}
	return nil
}

// Presence implements core.Presence: the change is queued for the cluster.
func (c *clusterRef) Presence(ctx context.Context, ev core.PresenceEvent) {
	if s := c.s.Load(); s != nil {
		s.Presence(ctx, ev)
	}
}

// FlushPresence implements core.PresenceFlusher: it waits until the
// presence queued for the cluster is committed.
func (c *clusterRef) FlushPresence(ctx context.Context) error {
	if s := c.s.Load(); s != nil {
		return s.FlushPresence(ctx)
	}
	return nil
}

// presenceChain passes each presence event to every sink in turn.
type presenceChain []core.Presence

// FlushPresence implements core.PresenceFlusher over the sinks that queue.
func (pc presenceChain) FlushPresence(ctx context.Context) error {
	var errs []error
	for _, p := range pc {
		if f, ok := p.(core.PresenceFlusher); ok {
			errs = append(errs, f.FlushPresence(ctx))
		}
	}
	return errors.Join(errs...)
}

// Presence implements core.Presence.
func (pc presenceChain) Presence(ctx context.Context, ev core.PresenceEvent) {
	for _, p := range pc {
		p.Presence(ctx, ev)
	}
}

// openCluster opens the node's replica of the cluster state and starts
// following it. It runs in Start, once the signaling URL (the default
// public URL) is known.
func (n *Node) openCluster() error {
	cc := n.cfg.Cluster
	rc := raftstore.DefaultConfig()
	rc.NodeID = n.id
	rc.RaftAddr, rc.AdvertiseAddr, rc.Listener = cc.RaftAddr, cc.AdvertiseAddr, cc.Listener
	if cc.Listener != nil {
		rc.RaftAddr = cc.Listener.Addr().String()
	}
	rc.PublicURL = cc.PublicURL
	if rc.PublicURL == "" {
		rc.PublicURL = n.http.SignalURL()
	}
	rc.DataDir = n.paths.RaftDir
	rc.Secret = n.clusterSecret
	rc.Logger = n.log.With("part", "raft")
	if cc.FailureGrace > 0 {
		rc.FailureGrace = cc.FailureGrace
	}
	peers, err := raftstore.ParsePeers(cc.Peers)
	if err != nil {
		return fmt.Errorf("node: cluster: %w", err)
	}
	rc.Peers, rc.Join = peers, cc.Join
	if n.rejoining() {
		// This node left the cluster (a drain) and dropped its replica:
		// ask the members to take it back instead of bootstrapping again.
		rc.Peers, rc.Join = nil, append(peerAddrs(peers, n.id), cc.Join...)
	}
	if cc.Tune != nil {
		cc.Tune(&rc)
	}
	s, err := raftstore.Open(rc)
	if err != nil {
		return fmt.Errorf("node: cluster: %w", err)
	}
	n.store = s
	n.cluster.s.Store(s)
	if err := n.followWebhooks(s); err != nil {
		n.log.Error("webhook pipeline not started", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.bgCancel = cancel
	s.WatchCluster(ctx, n.onClusterEvent)
	n.spawn(func() { n.pluginLoop(ctx) })
	n.spawn(func() { n.awaitReady(ctx) })
	n.log.Info("cluster member starting", "node_id", n.id, "raft", s.Addr(), "public_url", rc.PublicURL,
		"peers", len(rc.Peers), "join", rc.Join)
	return nil
}

// leftMarker is the file a node that left its cluster leaves behind.
func (n *Node) leftMarker() string { return n.paths.RaftDir + ".left" }

// rejoining reports whether the node left its cluster and has not been
// taken back yet (the marker goes once it is a ready member again). Until
// then it joins, never bootstraps: a replica begun by an interrupted
// rejoin must not become a second cluster.
func (n *Node) rejoining() bool {
	_, err := os.Stat(n.leftMarker())
	return err == nil
}

func peerAddrs(peers []raftstore.Peer, self string) []string {
	var out []string
	for _, p := range peers {
		if p.ID != self {
			out = append(out, p.Addr)
		}
	}
	return out
}

// awaitReady logs when the node is a ready member and syncs its plugins.
func (n *Node) awaitReady(ctx context.Context) {
	if err := n.store.WaitReady(ctx); err != nil {
		return
	}
	_ = os.Remove(n.leftMarker())
	if nd, ok := n.store.Node(n.id); ok && nd.Draining {
		// An earlier process drained but did not leave: this one serves.
		if err := n.store.SetDraining(ctx, false); err != nil {
			n.log.Warn("clearing the drain mark of an earlier process failed", "err", err)
		}
	}
	st := n.store.Status()
	n.log.Info("cluster ready", "leader", st.Leader, "term", st.Term, "nodes", len(st.Nodes))
	n.kickPlugins()
}

// WaitClusterReady waits until the node is a registered member of its
// cluster with a known leader. It returns at once on a node without one.
func (n *Node) WaitClusterReady(ctx context.Context) error {
	if n.store == nil {
		return nil
	}
	return n.store.WaitReady(ctx)
}

// onClusterEvent runs on the watcher goroutine for each committed change.
func (n *Node) onClusterEvent(ev core.ClusterEvent) {
	switch ev.Kind {
	case core.ClusterRoomReleased:
		if ev.Room.Owner == n.id {
			name, epoch := ev.Room.Room, ev.Room.Epoch
			n.spawn(func() { n.roomLost(name, epoch) })
		}
	case core.ClusterResync:
		n.spawn(n.reconcileRooms)
		n.kickPlugins()
	case core.ClusterPluginsChanged:
		n.kickPlugins()
	}
	n.notifyWebhooks(ev.Kind)
}

// roomLost moves the participants of a local room whose claim the cluster
// released: the leader declared this node failed (it was cut off or
// stopped), or an operator removed it. A release this node made itself
// concerns a room it no longer has, and Evict ignores it.
func (n *Node) roomLost(name string, epoch uint64) {
	n.rooms.Evict(name, epoch, n.movedURL(name))
}

// movedURL is where the participants of a room that left this node join
// again: its new owner, else this node (the room is free again, and the
// first to come back claims it here), else another node when this one
// drains.
func (n *Node) movedURL(name string) string {
	if c, ok := n.store.Room(name); ok && c.Owner != n.id {
		if nd, ok := n.store.Node(c.Owner); ok && nd.PublicURL != "" {
			return nd.PublicURL
		}
		return c.OwnerURL
	}
	if n.rooms.Draining() {
		return n.rooms.Elsewhere(name)
	}
	if nd, ok := n.store.Node(n.id); ok {
		return nd.PublicURL
	}
	return ""
}

// reconcileRooms checks every local room against the cluster state after
// the replica was replaced: a room whose claim is gone moves.
func (n *Node) reconcileRooms() {
	for name, epoch := range n.rooms.ClaimedRooms() {
		if c, ok := n.store.Room(name); !ok || c.Owner != n.id || c.Epoch != epoch {
			n.rooms.Evict(name, epoch, n.movedURL(name))
		}
	}
}

// Clustered reports whether the node is a member of a cluster.
func (n *Node) Clustered() bool { return n.store != nil }

// Store returns the node's replica of the cluster state, or nil.
func (n *Node) Store() *raftstore.Store { return n.store }

// Fatal is closed when the node's cluster replica can no longer serve (its
// log writes stalled while it led): the process should exit and be
// restarted. It is nil, and never ready, on a node without a cluster.
func (n *Node) Fatal() <-chan struct{} {
	if n.store == nil {
		return nil
	}
	return n.store.Fatal()
}

// Drain moves the node out of its cluster: it takes no new rooms, hands
// its rooms over (their clients are told to join again on another node),
// then leaves the cluster and drops its replica, so that starting it again
// with the same command line joins the cluster afresh. Call Shutdown
// afterwards. On a node without a cluster it does nothing.
func (n *Node) Drain(ctx context.Context) error {
	if n.store == nil {
		return nil
	}
	n.http.SetDraining()
	if err := n.store.SetDraining(ctx, true); err != nil {
		n.log.Warn("drain: marking the node draining failed", "err", err)
	}
	moved := n.rooms.Drain(ctx)
	n.log.Info("drain: rooms handed over", "participants_moved", moved)
	if err := n.store.Leave(ctx); err != nil {
		return fmt.Errorf("node: drain: leave the cluster: %w", err)
	}
	n.left = true
	n.log.Info("drain: left the cluster")
	return nil
}

// stopCluster shuts the replica down; after a Drain it also drops it.
func (n *Node) stopCluster(ctx context.Context) error {
	if n.store == nil {
		return nil
	}
	n.bgCancel()
	n.webhooks().stop()
	// Presence still queued is flushed for a moment only: a node cut off
	// from its cluster cannot commit it, and the leader ends the node's
	// presence itself after its failure grace.
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := n.store.Shutdown(fctx)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		err = n.store.Shutdown(ctx)
	}
	n.bgMu.Lock()
	n.bgClosed = true
	n.bgMu.Unlock()
	n.bg.Wait()
	if err == nil && n.left {
		if werr := os.WriteFile(n.leftMarker(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); werr != nil {
			return fmt.Errorf("node: mark the cluster left: %w", werr)
		}
		if rerr := os.RemoveAll(n.paths.RaftDir); rerr != nil {
			return fmt.Errorf("node: drop the replica after leaving: %w", rerr)
		}
	}
	return err
}

// clusterInfo describes the cluster in /v1/info.
func (n *Node) clusterInfo() map[string]any {
	st := n.store.Status()
	return map[string]any{"node_id": n.id, "state": st.State, "leader": st.Leader, "term": st.Term, "nodes": len(st.Nodes)}
}

// spawn runs f on a goroutine stopCluster waits for, unless it has begun.
func (n *Node) spawn(f func()) {
	n.bgMu.Lock()
	defer n.bgMu.Unlock()
	if n.bgClosed {
		return
	}
	n.bg.Go(f)
}
