package raftstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/core"
)

// WaitReady returns once this node is a registered member with a known
// leader: it has joined (or bootstrapped) the cluster, its own record, with
// its raft address and public URL, is in its local replica, and this
// process's first registration (which releases what an earlier process of
// the node left) is done, so a room claimed after WaitReady is not released
// by it.
func (s *Store) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.firstRegistered.Load() && s.registered() {
			if addr, _ := s.raft.LeaderWithID(); addr != "" {
				return nil
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return public(fmt.Errorf("%w: not ready: %w", ErrNoLeader, ctx.Err()))
		case <-s.ctx.Done():
			return public(ErrShutdown)
		}
	}
}

// registered reports whether the local replica holds this node's current
// record.
func (s *Store) registered() bool {
	var ok bool
	s.fsm.read(func(st *state) {
		n, found := st.Nodes[s.id]
		ok = found && !n.Down && n.RaftAddr == s.advertise && n.PublicURL == s.cfg.PublicURL && n.MaxKind == maxKind
	})
	return ok
}

// registrar keeps this node's record in the registry current: it registers
// the node after start (and after a join), and again if the leader marked
// it down while it was only cut off. Its first registration also clears
// what an earlier process of this node left behind (RegisterNode.Started).
func (s *Store) registrar() {
	wake := make(chan struct{}, 1)
	s.WatchCluster(s.ctx, func(ev core.ClusterEvent) {
		if ev.Kind == core.ClusterResync || ev.Node.ID == s.id {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	started := true
	delay := 50 * time.Millisecond
	for {
		if (started || !s.registered()) && s.inConfiguration() {
			if err := s.register(started); err != nil {
				if s.ctx.Err() == nil {
					s.log.Debug("registering node failed; will retry", "error", err)
				}
			} else {
				started, delay = false, 50*time.Millisecond
				s.firstRegistered.Store(true)
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-wake:
		case <-time.After(delay):
			delay = min(2*delay, 2*time.Second)
		}
	}
}

// register commits this node's record unless the replica, once caught up
// with the leader (a restarted node replays its log first), holds it
// already and, on the first registration, nothing of an earlier process
// needs clearing.
func (s *Store) register(started bool) error {
	if err := s.Sync(s.ctx); err != nil {
		return err
	}
	if s.registered() && !(started && s.ownsAnything()) {
		return nil
	}
	cmd := &RegisterNode{ID: s.id, RaftAddr: s.advertise, PublicURL: s.cfg.PublicURL, Started: started, MaxKind: maxKind}
	_, err := s.Apply(s.ctx, cmd)
	return err
}

// ownsAnything reports whether the replica holds rooms or participants of
// this node.
func (s *Store) ownsAnything() bool {
	found := false
	s.fsm.read(func(st *state) {
		for _, r := range st.Rooms {
			if r.Owner == s.id {
				found = true
				return
			}
		}
		for _, p := range st.Presence {
			if p.Node == s.id {
				found = true
				return
			}
		}
	})
	return found
}

// inConfiguration reports whether this node is a voter of the raft
// configuration it knows.
func (s *Store) inConfiguration() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == s.id {
			return true
		}
	}
	return false
}

// joiner asks the members in Config.Join to add this node as a voter until
// one of them did, or the node finds itself in the configuration.
func (s *Store) joiner() {
	body, _ := json.Marshal(memberRequest{ID: s.id, Addr: s.advertise})
	delay := 100 * time.Millisecond
	for s.ctx.Err() == nil && !s.inConfiguration() {
		for _, addr := range s.cfg.Join {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
			_, err := s.rpc.call(ctx, addr, opJoin, 0, body)
			cancel()
			if err == nil {
				s.log.Info("joined the cluster", "via", addr)
				return
			}
			s.log.Warn("join failed; will retry", "via", addr, "error", err)
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(delay):
			delay = min(2*delay, 5*time.Second)
		}
	}
}

// addVoter adds (or re-addresses) a voter through the leader.
func (s *Store) addVoter(ctx context.Context, id, addr string) error {
	return s.retry(ctx, func(ctx context.Context) error {
		if s.raft.State() == raft.Leader {
			return s.addVoterLocal(ctx, id, addr)
		}
		return s.forwardMember(ctx, opJoin, id, addr)
	})
}

func (s *Store) addVoterLocal(ctx context.Context, id, addr string) error {
	if !nodeIDRE.MatchString(id) {
		return fmt.Errorf("%w: node id %q", ErrBadCommand, id)
	}
	if err := checkAdvertise(addr); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	f := s.raft.GetConfiguration()
	if err := s.await(ctx, f); err != nil {
		return err
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id && string(srv.Address) == addr && srv.Suffrage == raft.Voter {
			return nil
		}
	}
	s.log.Info("adding voter", "id", id, "addr", addr)
	return s.await(ctx, s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeUntil(ctx)))
}

func (s *Store) forwardMember(ctx context.Context, op byte, id, addr string) error {
	leader, err := s.leaderAddr()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(memberRequest{ID: id, Addr: addr})
	_, err = s.rpc.call(ctx, leader, op, flagNoForward, body)
	return err
}

// RemoveNode removes node id from the cluster: from the raft configuration
// and from the registry, releasing its rooms and ending its participants'
// presence (reason "node_removed"). It works from any node; to remove the
// leader, leadership is handed to another node first. Removing a node
// that is no member is not an error. A node that removes itself should use
// Leave.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	return public(s.removeNode(ctx, id))
}

func (s *Store) removeNode(ctx context.Context, id string) error {
	return s.retry(ctx, func(ctx context.Context) error {
		if s.raft.State() == raft.Leader {
			return s.removeLocal(ctx, id)
		}
		return s.forwardMember(ctx, opRemove, id, "")
	})
}

func (s *Store) removeLocal(ctx context.Context, id string) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if id == s.id {
		s.log.Info("handing leadership over before removing this node")
		if err := s.await(ctx, s.raft.LeadershipTransfer()); err != nil {
			return err
		}
		return ErrNotLeader
	}
	f := s.raft.GetConfiguration()
	if err := s.await(ctx, f); err != nil {
		return err
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			s.log.Info("removing server", "id", id)
			if err := s.await(ctx, s.raft.RemoveServer(srv.ID, 0, timeUntil(ctx))); err != nil {
				return err
			}
		}
	}
	return s.commitNodeDown(ctx, id, "node_removed", true)
}

// commitNodeDown commits a NodeDown for id as leader.
func (s *Store) commitNodeDown(ctx context.Context, id, reason string, remove bool) error {
	cmd := &NodeDown{ID: id, Reason: reason, Remove: remove}
	cmd.Header = Header{RequestID: core.NewID("RQ_"), Node: s.id, At: time.Now().UnixNano()}
	data, err := EncodeCommand(cmd)
	if err != nil {
		return err
	}
	res, err := s.applyLocal(ctx, data)
	if err != nil {
		return err
	}
	return res.Err()
}

// Leave removes this node from the cluster (see RemoveNode) so that the
// others carry on without it; call Shutdown afterwards. Drain it first
// (SetDraining) so that its rooms move elsewhere.
func (s *Store) Leave(ctx context.Context) error {
	return public(s.removeNode(ctx, s.id))
}

// SetDraining marks this node as draining (core.Drainer): it takes no new
// rooms. The control plane tells its clients to move and calls Leave once
// its rooms are empty.
func (s *Store) SetDraining(ctx context.Context, draining bool) error {
	_, err := s.Apply(ctx, &SetDrain{ID: s.id, Draining: draining})
	return err
}
