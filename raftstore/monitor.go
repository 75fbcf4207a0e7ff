package raftstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// monitor is the leader's view of its peers' health. It learns of trouble
// from raft itself (FailedHeartbeatObservation and
// ResumedHeartbeatObservation from the leader's replication), never from
// heartbeats written to the log. A peer silent for Config.FailureGrace
// gets a committed NodeDown: its rooms are released and its participants'
// presence ended. The monitor also removes from the registry any node that
// is no longer in the raft configuration, and creates the cluster's
// webhook signing key when the state has none.
type monitor struct {
	s   *Store
	obs chan raft.Observation

	mu          sync.Mutex
	leading     bool
	leaderSince time.Time
	suspects    map[string]time.Time // peer id -> last contact (or when we started leading)
	declared    map[string]bool      // NodeDown committed for the current silence
}

func newMonitor(s *Store) *monitor {
	return &monitor{
		s: s, obs: make(chan raft.Observation, 1024),
		suspects: map[string]time.Time{}, declared: map[string]bool{},
	}
}

func (m *monitor) run() {
	o := raft.NewObserver(m.obs, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.PeerObservation:
			return true
		}
		return false
	})
	m.s.raft.RegisterObserver(o)
	defer m.s.raft.DeregisterObserver(o)
	tick := time.NewTicker(max(m.s.cfg.FailureGrace/4, 50*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-m.s.ctx.Done():
			return
		case ob := <-m.obs:
			m.observe(ob.Data)
			if lo, ok := ob.Data.(raft.LeaderObservation); ok && string(lo.LeaderID) == m.s.id {
				m.ensureKey()
			}
		case <-tick.C:
			m.check()
		}
	}
}

func (m *monitor) observe(data any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch o := data.(type) {
	case raft.LeaderObservation:
		m.leading = string(o.LeaderID) == m.s.id
		m.leaderSince = time.Now()
		clear(m.suspects)
		clear(m.declared)
	case raft.FailedHeartbeatObservation:
		id := string(o.PeerID)
		if _, ok := m.suspects[id]; !ok {
			since := o.LastContact
			if since.Before(m.leaderSince) {
				since = m.leaderSince
			}
			m.suspects[id] = since
		}
	case raft.ResumedHeartbeatObservation:
		delete(m.suspects, string(o.PeerID))
		delete(m.declared, string(o.PeerID))
	case raft.PeerObservation:
		if o.Removed {
			delete(m.suspects, string(o.Peer.ID))
			delete(m.declared, string(o.Peer.ID))
		}
	}
}

// due returns the peers silent for longer than the grace period that have
// not been declared down yet.
func (m *monitor) due(now time.Time) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.leading {
		return nil
	}
	var ids []string
	for id, since := range m.suspects {
		if !m.declared[id] && now.Sub(since) >= m.s.cfg.FailureGrace {
			ids = append(ids, id)
		}
	}
	return ids
}

// check commits NodeDown for overdue peers and NodeDown{Remove} for
// registered nodes outside the configuration.
func (m *monitor) check() {
	s := m.s
	if !m.syncLeading(s.raft.State() == raft.Leader) {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
	defer cancel()
	for _, id := range m.due(time.Now()) {
		if !m.needsDown(id) {
			m.markDeclared(id)
			continue
		}
		s.log.Warn("node unreachable beyond the grace period; releasing its rooms", "peer", id, "grace", s.cfg.FailureGrace)
		if err := s.commitNodeDown(ctx, id, "node_failed", false); err != nil {
			s.log.Warn("declaring node down failed; will retry", "peer", id, "error", err)
			continue
		}
		m.markDeclared(id)
	}
	m.reconcile(ctx)
	m.ensureKey()
}

// ensureKey creates the cluster's webhook signing key if the state has
// none, once this node leads. It returns at once when a key exists.
func (m *monitor) ensureKey() {
	s := m.s
	if _, ok := s.activeKey(); ok || s.raft.State() != raft.Leader {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
	defer cancel()
	k, err := s.EnsureSigningKey(ctx)
	if err != nil {
		s.log.Warn("creating the cluster signing key failed; will retry", "error", err)
		return
	}
	s.log.Info("cluster signing key in place", "key_id", k.ID)
}

// syncLeading catches up with a leadership change whose observation was
// missed (raft may elect this node before the observer is registered).
func (m *monitor) syncLeading(leader bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if leader && !m.leading {
		m.leading, m.leaderSince = true, time.Now()
	}
	if !leader {
		m.leading = false
	}
	return leader
}

func (m *monitor) markDeclared(id string) {
	m.mu.Lock()
	m.declared[id] = true
	m.mu.Unlock()
}

// needsDown reports whether id still owns rooms or participants or is not
// marked down.
func (m *monitor) needsDown(id string) bool {
	need := false
	m.s.fsm.read(func(st *state) {
		if n, ok := st.Nodes[id]; ok && !n.Down {
			need = true
			return
		}
		for _, r := range st.Rooms {
			if r.Owner == id {
				need = true
				return
			}
		}
		for _, p := range st.Presence {
			if p.Node == id {
				need = true
				return
			}
		}
	})
	return need
}

// reconcile removes registry entries of nodes that left the configuration.
func (m *monitor) reconcile(ctx context.Context) {
	s := m.s
	f := s.raft.GetConfiguration()
	if s.await(ctx, f) != nil {
		return
	}
	members := map[string]bool{}
	for _, srv := range f.Configuration().Servers {
		members[string(srv.ID)] = true
	}
	var strays []string
	s.fsm.read(func(st *state) {
		for _, id := range sortedKeys(st.Nodes) {
			if !members[id] {
				strays = append(strays, id)
			}
		}
	})
	for _, id := range strays {
		s.log.Info("removing registry entry of a node outside the configuration", "peer", id)
		if err := s.commitNodeDown(ctx, id, "node_removed", true); err != nil {
			return
		}
	}
}

// health returns the leader's view of a peer: whether it is silent, and
// since when. ok is false when this node is not leading.
func (m *monitor) health(id string) (silentSince time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.leading {
		return time.Time{}, false
	}
	return m.suspects[id], true
}

// watchdog guards against hashicorp/raft issue 503: a leader whose disk
// stalls keeps heartbeating from its replication goroutines while its log
// writes hang, so the followers never elect anyone else and the cluster
// takes no writes. Every WatchdogInterval without a completed write, the
// leader times a barrier (a no-op log write). One that takes longer than
// WatchdogTimeout makes it fence itself; see Store.Fatal.
func (s *Store) watchdog() {
	t := time.NewTicker(s.cfg.WatchdogInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.raft.State() != raft.Leader {
			continue
		}
		if time.Since(time.Unix(0, s.lastWrite.Load())) < s.cfg.WatchdogInterval {
			continue
		}
		switch err := s.probe(); {
		case err == nil:
			s.lastWrite.Store(time.Now().UnixNano())
		case errors.Is(err, context.DeadlineExceeded):
			s.stalled()
			return
		}
	}
}

// probe commits a barrier within the watchdog timeout.
func (s *Store) probe() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WatchdogTimeout)
	defer cancel()
	err := s.await(ctx, s.raft.Barrier(s.cfg.WatchdogTimeout))
	if err != nil && ctx.Err() == context.DeadlineExceeded && s.ctx.Err() == nil {
		return context.DeadlineExceeded
	}
	return err
}

// stalled fences the node and shuts raft down; see Store.Fatal for why it
// does not ask raft for a leadership transfer first.
func (s *Store) stalled() {
	if s.ctx.Err() != nil {
		return
	}
	s.log.Error("leader log writes stalled; fencing this node off the cluster", "timeout", s.cfg.WatchdogTimeout)
	s.layer.fence()
	s.setFatal(ErrStalled)
	s.spawn(func() { _ = s.raft.Shutdown().Error() })
}
