package raftstore

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/parleyhq/parley/core"
)

// RecoverCluster rewrites the raft configuration in a stopped node's data
// directory to voters, for when a cluster lost its quorum for good (two of
// three nodes destroyed): run it on the survivors with the same voters
// (typically just themselves), then start them as usual. It replays the
// node's log into a scratch state machine, so the recovered configuration
// is stamped after the last entry the node holds. Entries the lost nodes
// had committed but this node never received are lost: recover from the
// node with the highest last index. The Store must not be running.
func RecoverCluster(cfg Config, voters []Peer) error {
	cfg.Peers, cfg.Join = nil, nil
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(voters) == 0 {
		return fmt.Errorf("%w: recovery needs at least one voter", ErrInvalidConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "wal")); err != nil {
		return fmt.Errorf("raftstore: recover: no log in %s: %w", cfg.DataDir, err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.unlock()
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	logs, err := wal.Open(filepath.Join(cfg.DataDir, "wal"), wal.WithLogger(newHCLog(log, "raft-wal")), wal.WithMetaStore(meta))
	if err != nil {
		return fmt.Errorf("raftstore: recover: open log: %w", err)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, newHCLog(log, "snapshots"))
	if err != nil {
		return fmt.Errorf("raftstore: recover: open snapshots: %w", err)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.advertise()))
	defer trans.Close()
	var servers []raft.Server
	for _, p := range voters {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
	}
	f := newFSM(func([]core.ClusterEvent) {})
	err = raft.RecoverCluster(cfg.raftConfig(log), f, logs, logs, snaps, trans, raft.Configuration{Servers: servers})
	if err != nil {
		return fmt.Errorf("raftstore: recover: %w", err)
	}
	log.Warn("cluster configuration recovered", "voters", len(servers), "applied", f.applied())
	return nil
}
