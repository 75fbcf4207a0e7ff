package raftstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/parleyhq/parley/core"
)

// Store is one node's replica of the cluster state: a hashicorp/raft node
// over raft-wal, a file snapshot store and the state machine, reachable by
// its peers over mutual TLS. It implements core.ClusterState,
// core.ClusterNodes, core.ConsistentReader, core.ClusterWatcher,
// core.Drainer and core.Presence.
//
// All methods are safe for concurrent use. Every goroutine the Store starts
// ends in Shutdown.
//
// Writes (Apply and the typed helpers) work on any node: a follower
// forwards them to the leader over the cluster transport, and all of them
// retry through leader changes for at most Config.ApplyTimeout. Reads
// answer from the local replica; Sync makes them linearizable.
//
// The leader also watches its peers: a node raft cannot heartbeat for
// Config.FailureGrace has its rooms released and its participants' presence
// ended by a committed NodeDown. And it watches itself: see Fatal for the
// watchdog against stalled log writes.
type Store struct {
	cfg       Config
	log       *slog.Logger
	id        string
	advertise string

	ctx    context.Context // cancelled when Shutdown begins
	cancel context.CancelFunc
	bgMu   sync.Mutex // guards wg.Add against the final wg.Wait
	bgDone bool
	wg     sync.WaitGroup

	lock  *dirLock
	logs  *wal.WAL
	meta  *metadb.BoltMetaDB
	snaps *raft.FileSnapshotStore
	layer *netLayer
	trans *raft.NetworkTransport
	raft  *raft.Raft
	fsm   *fsm
	hub   *hub
	rpc   *rpcClient
	pres  *presenceQueue
	mon   *monitor

	logStore raft.LogStore // logs, possibly wrapped by tests

	lastWrite atomic.Int64 // unix nanos of the last local apply that completed as leader
	latency   latencies    // Apply round trips on this node

	firstRegistered atomic.Bool // this process's first registration is committed

	fatalOnce sync.Once
	fatal     chan struct{}
	fatalErr  error

	shutdownOnce sync.Once
	shutdownDone chan struct{}
	shutdownErr  error
}

// options are test hooks.
type options struct {
	wrapLogStore func(raft.LogStore) raft.LogStore
}

// Open validates cfg, opens (or creates) the node's data directory, starts
// the raft node and its background work and returns at once, without
// waiting for a leader: use WaitReady for that. A new node bootstraps
// cfg.Peers (or joins cfg.Join in the background); a node with existing
// state ignores both and rejoins its cluster. Once it is a member, the
// node registers itself (id, raft address, public URL); its first
// registration releases the rooms and ends the presence that an earlier
// process of the same node left in the cluster state, since a process
// that just started hosts no participants.
func Open(cfg Config) (*Store, error) { return open(cfg, options{}) }

func open(cfg Config, opts options) (_ *Store, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", cfg.NodeID)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		cfg: cfg, log: log, id: cfg.NodeID, advertise: cfg.advertise(),
		ctx: ctx, cancel: cancel, hub: newHub(),
		fatal: make(chan struct{}), shutdownDone: make(chan struct{}),
	}
	s.fsm = newFSM(s.hub.publish)
	defer func() {
		if err != nil {
			s.abortOpen()
		}
	}()
	if err := s.openStorage(opts); err != nil {
		return nil, err
	}
	if err := s.openTransport(); err != nil {
		return nil, err
	}
	if err := s.startRaft(); err != nil {
		return nil, err
	}
	s.pres = newPresenceQueue(s)
	s.mon = newMonitor(s)
	s.layer.start(s.serveRPC)
	s.startLoops()
	return s, nil
}

func (s *Store) openStorage(opts options) error {
	if err := os.MkdirAll(filepath.Join(s.cfg.DataDir, "wal"), 0o700); err != nil {
		return fmt.Errorf("raftstore: data directory: %w", err)
	}
	lock, err := lockDir(s.cfg.DataDir)
	if err != nil {
		return err
	}
	s.lock = lock
	// WAL.Close leaves its meta database open (and its file locked), so
	// the Store owns it and closes it after the WAL.
	s.meta = &metadb.BoltMetaDB{}
	s.logs, err = wal.Open(filepath.Join(s.cfg.DataDir, "wal"),
		wal.WithLogger(newHCLog(s.log, "raft-wal")), wal.WithMetaStore(s.meta))
	if err != nil {
		return fmt.Errorf("raftstore: open log: %w", err)
	}
	s.logStore = s.logs
	if opts.wrapLogStore != nil {
		s.logStore = opts.wrapLogStore(s.logs)
	}
	s.snaps, err = raft.NewFileSnapshotStoreWithLogger(s.cfg.DataDir, s.cfg.SnapshotRetain, newHCLog(s.log, "snapshots"))
	if err != nil {
		return fmt.Errorf("raftstore: open snapshots: %w", err)
	}
	return nil
}

func (s *Store) openTransport() error {
	var creds *credentials
	var err error
	if s.cfg.Secret != "" {
		creds, err = secretCredentials(s.cfg.Secret, s.id)
	} else {
		creds, err = fileCredentials(s.cfg.TLSFiles)
	}
	if err != nil {
		return err
	}
	ln := s.cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", s.cfg.RaftAddr); err != nil {
			return fmt.Errorf("raftstore: listen: %w", err)
		}
	}
	s.layer = newNetLayer(ln, s.advertise, creds, s.cfg.TransportTimeout, s.log)
	// Forwarded writes wait for their commit on their stream, so keep
	// enough idle streams for many concurrent writers.
	s.rpc = newRPCClient(s.layer, max(s.cfg.TransportMaxPool, rpcMaxIdle))
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftStream{s.layer},
		MaxPool: s.cfg.TransportMaxPool,
		Timeout: s.cfg.TransportTimeout,
		Logger:  newHCLog(s.log, "raft-net"),
	})
	return nil
}

// startRaft bootstraps a new cluster when this node has no state and is
// not joining one, then starts raft.
func (s *Store) startRaft() error {
	rc := s.cfg.raftConfig(s.log)
	has, err := raft.HasExistingState(s.logStore, s.logs, s.snaps)
	if err != nil {
		return fmt.Errorf("raftstore: read state: %w", err)
	}
	if !has && len(s.cfg.Join) == 0 {
		var servers []raft.Server
		for _, p := range s.cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if len(servers) == 0 {
			servers = []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(s.id), Address: raft.ServerAddress(s.advertise)}}
		}
		cfg := raft.Configuration{Servers: servers}
		if err := raft.BootstrapCluster(rc, s.logStore, s.logs, s.snaps, unpipelined{s.trans}, cfg); err != nil {
			return fmt.Errorf("raftstore: bootstrap: %w", err)
		}
		s.log.Info("bootstrapped a new cluster", "voters", len(servers))
	} else if has {
		s.log.Info("found existing state; not bootstrapping")
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, s.logStore, s.logs, s.snaps, unpipelined{s.trans})
	if err != nil {
		return fmt.Errorf("raftstore: start raft: %w", err)
	}
	return nil
}

// abortOpen releases whatever a failed Open acquired.
func (s *Store) abortOpen() {
	s.cancel()
	if s.raft != nil {
		_ = s.raft.Shutdown().Error()
	}
	if s.trans != nil {
		_ = s.trans.Close()
	}
	if s.layer != nil {
		s.layer.close()
	} else if s.cfg.Listener != nil {
		_ = s.cfg.Listener.Close()
	}
	if s.logs != nil {
		_ = s.logs.Close()
	}
	if s.meta != nil {
		_ = s.meta.Close()
	}
	if s.lock != nil {
		_ = s.lock.unlock()
	}
	s.hub.close()
}

// spawn runs fn on a goroutine that Shutdown waits for. Once Shutdown
// waits, it runs fn on the caller's goroutine instead.
func (s *Store) spawn(fn func()) {
	s.bgMu.Lock()
	if s.bgDone {
		s.bgMu.Unlock()
		fn()
		return
	}
	s.wg.Add(1)
	s.bgMu.Unlock()
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// waitBackground waits for every spawned goroutine.
func (s *Store) waitBackground() {
	s.bgMu.Lock()
	s.bgDone = true
	s.bgMu.Unlock()
	s.wg.Wait()
}

func (s *Store) startLoops() {
	s.spawn(s.mon.run)
	s.spawn(s.watchdog)
	s.spawn(s.registrar)
	if len(s.cfg.Join) > 0 {
		s.spawn(s.joiner)
	}
	s.spawn(s.pres.run)
}

// ID returns the node id.
func (s *Store) ID() string { return s.id }

// LocalNode returns the node id (core.ClusterState).
func (s *Store) LocalNode() string { return s.id }

// Addr returns the raft address other nodes dial.
func (s *Store) Addr() string { return s.advertise }

// Fatal is closed when the Store can no longer serve and the process should
// exit and be restarted; FatalErr says why. That happens when the watchdog
// finds the node's own log writes stalled while it leads the cluster
// (hashicorp/raft issue 503: the replication goroutines keep heartbeating,
// so the followers never elect anyone else, while the leader loop hangs in
// the log store). The node then fences itself off the cluster transport:
// every connection is dropped and none accepted, so the followers stop
// hearing heartbeats and elect a new leader within an election timeout;
// then it shuts raft down (which completes once the disk answers again).
// It does not ask raft for a leadership transfer first: the transfer is
// run by the same leader loop that hangs in the log store, so it would
// only add the watchdog timeout to the outage.
func (s *Store) Fatal() <-chan struct{} { return s.fatal }

// FatalErr returns the reason Fatal was closed, or nil.
func (s *Store) FatalErr() error {
	select {
	case <-s.fatal:
		return s.fatalErr
	default:
		return nil
	}
}

func (s *Store) setFatal(err error) {
	s.fatalOnce.Do(func() {
		s.fatalErr = err
		close(s.fatal)
	})
}

// Shutdown stops the node. It first tries, within ctx and the apply
// timeout, to commit the presence changes still queued (see Presence),
// then stops the background work, raft, the transport and the log, in
// that order, and waits for every goroutine the Store started. It does not
// leave the cluster (see Leave). It returns ctx's error if ctx ends first;
// the shutdown then goes on in the background. Calling it again waits for
// the same shutdown.
func (s *Store) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.pres.flush(ctx)
		go s.shutdown()
	})
	select {
	case <-s.shutdownDone:
		return s.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) shutdown() {
	defer close(s.shutdownDone)
	s.cancel()
	var errs []error
	if err := s.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft: %w", err))
	}
	s.layer.close()
	s.rpc.close()
	s.waitBackground()
	s.hub.close()
	if err := s.logs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("log: %w", err))
	}
	if err := s.meta.Close(); err != nil {
		errs = append(errs, fmt.Errorf("log meta: %w", err))
	}
	if err := s.lock.unlock(); err != nil {
		errs = append(errs, err)
	}
	s.shutdownErr = errors.Join(errs...)
	s.log.Info("raft store shut down")
}

// Apply commits cmd through the leader and returns the state machine's
// result, or the error the command failed with. It fills in an empty
// request id, the proposing node and the time. A follower forwards the
// command; leader changes are waited out for at most Config.ApplyTimeout.
// An error matching ErrLeadershipLost means the outcome is unknown;
// applying the same command again (same request id) is safe.
func (s *Store) Apply(ctx context.Context, cmd Command) (Result, error) {
	h := cmd.Head()
	if h.RequestID == "" {
		h.RequestID = core.NewID("RQ_")
	}
	if h.At == 0 {
		h.At = time.Now().UnixNano()
	}
	h.Node = s.id
	if err := s.checkKind(cmd.Kind()); err != nil {
		return Result{}, public(err)
	}
	data, err := EncodeCommand(cmd)
	if err != nil {
		return Result{}, public(err)
	}
	start := time.Now()
	res, err := s.applyEncoded(ctx, data)
	s.latency.observe(time.Since(start))
	if err == nil {
		err = res.Err()
	}
	return res, public(err)
}

// applyEncoded commits data, forwarding and retrying within the apply bound.
func (s *Store) applyEncoded(ctx context.Context, data []byte) (Result, error) {
	var res Result
	err := s.retry(ctx, func(ctx context.Context) error {
		var err error
		res, err = s.applyOnce(ctx, data)
		return err
	})
	return res, err
}

// applyOnce commits data on the leader, itself or the one it knows.
func (s *Store) applyOnce(ctx context.Context, data []byte) (Result, error) {
	if s.raft.State() == raft.Leader {
		return s.applyLocal(ctx, data)
	}
	addr, err := s.leaderAddr()
	if err != nil {
		return Result{}, err
	}
	body, err := s.rpc.call(ctx, addr, opApply, flagNoForward, data)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if err := json.Unmarshal(body, &res); err != nil {
		return Result{}, &transportError{sent: true, err: err}
	}
	return res, nil
}

// leaderAddr returns the address of the leader this node knows of.
func (s *Store) leaderAddr() (string, error) {
	addr, id := s.raft.LeaderWithID()
	if addr == "" || string(id) == s.id {
		return "", ErrNoLeader
	}
	return string(addr), nil
}

// applyLocal commits data if this node leads.
func (s *Store) applyLocal(ctx context.Context, data []byte) (Result, error) {
	if s.raft.State() != raft.Leader {
		return Result{}, ErrNotLeader
	}
	f := s.raft.Apply(data, timeUntil(ctx))
	if err := s.await(ctx, f); err != nil {
		return Result{}, err
	}
	s.lastWrite.Store(time.Now().UnixNano())
	res, ok := f.Response().(Result)
	if !ok {
		return Result{}, fmt.Errorf("raftstore: unexpected state machine answer %T", f.Response())
	}
	return res, nil
}

// await waits for a raft future within ctx and maps raft's errors to ours.
// A future still pending when ctx ends is left to raft, which settles
// every future at the latest when it shuts down.
func (s *Store) await(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	s.spawn(func() { done <- f.Error() })
	select {
	case err := <-done:
		return raftError(err)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrLeadershipLost, ctx.Err())
	}
}

func raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	}
	return err
}

func timeUntil(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 0
}

// retry runs op until it succeeds, fails for good, or the apply bound (or
// ctx) ends. At the end it reports ErrLeadershipLost if some attempt may
// have taken effect, ErrNoLeader otherwise.
func (s *Store) retry(ctx context.Context, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	unknown := false
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil || permanent(err) {
			return err
		}
		var te *transportError
		if errors.Is(err, ErrLeadershipLost) || (errors.As(err, &te) && te.sent) {
			unknown = true
		}
		wait := min(5*time.Millisecond<<min(attempt, 5), 100*time.Millisecond)
		select {
		case <-time.After(wait):
			continue
		case <-ctx.Done():
		}
		switch {
		case s.ctx.Err() != nil:
			return ErrShutdown
		case unknown:
			return fmt.Errorf("%w: last attempt: %w", ErrLeadershipLost, err)
		default:
			return fmt.Errorf("%w: last attempt: %w", ErrNoLeader, err)
		}
	}
}

// permanent reports errors that retrying cannot fix.
func permanent(err error) bool {
	return errors.Is(err, ErrShutdown) || errors.Is(err, ErrBadCommand) || errors.Is(err, ErrTooLarge) ||
		errors.Is(err, context.Canceled)
}

// Sync returns once the local replica reflects every write committed
// before the call (core.ConsistentReader): the leader commits a barrier,
// which only a leader still in contact with a majority can do, and names
// the last command it applied; this node waits until it has applied that
// far. A node cut off from the majority fails with ErrNoLeader or
// ErrLeadershipLost instead of serving stale reads.
func (s *Store) Sync(ctx context.Context) error {
	var idx uint64
	err := s.retry(ctx, func(ctx context.Context) error {
		var err error
		idx, err = s.readIndex(ctx)
		return err
	})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
		defer cancel()
		err = s.fsm.waitApplied(ctx, idx)
	}
	return public(err)
}

func (s *Store) readIndex(ctx context.Context) (uint64, error) {
	if s.raft.State() == raft.Leader {
		return s.readIndexLocal(ctx)
	}
	addr, err := s.leaderAddr()
	if err != nil {
		return 0, err
	}
	body, err := s.rpc.call(ctx, addr, opReadIndex, flagNoForward, nil)
	if err != nil {
		return 0, err
	}
	if len(body) != 8 {
		return 0, &transportError{err: fmt.Errorf("read index answer of %d bytes", len(body))}
	}
	return binary.BigEndian.Uint64(body), nil
}

// readIndexLocal commits a barrier as leader and returns the index of the
// last command applied before it.
func (s *Store) readIndexLocal(ctx context.Context) (uint64, error) {
	if s.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	if err := s.await(ctx, s.raft.Barrier(timeUntil(ctx))); err != nil {
		return 0, err
	}
	s.lastWrite.Store(time.Now().UnixNano())
	return s.fsm.applied(), nil
}

// WatchCluster calls fn for every committed change from now on
// (core.ClusterWatcher); see there for the contract.
func (s *Store) WatchCluster(ctx context.Context, fn func(core.ClusterEvent)) {
	s.hub.watch(ctx, fn)
}

// Snapshot makes raft take a snapshot now and compact its log.
func (s *Store) Snapshot() error {
	err := s.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return public(raftError(err))
}

// The Store is the core's cluster state.
var (
	_ core.ClusterState     = (*Store)(nil)
	_ core.ClusterNodes     = (*Store)(nil)
	_ core.ConsistentReader = (*Store)(nil)
	_ core.ClusterWatcher   = (*Store)(nil)
	_ core.Drainer          = (*Store)(nil)
	_ core.Presence         = (*Store)(nil)
)
