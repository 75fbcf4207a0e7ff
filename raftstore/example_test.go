package raftstore_test

import (
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/raftstore"
)

// How a parley node starts its cluster state, places a room and records
// presence. (Not run: it needs its peers.)
func ExampleOpen() {
	peers, err := raftstore.ParsePeers("n1=10.0.0.1:7946,n2=10.0.0.2:7946,n3=10.0.0.3:7946")
	if err != nil {
		log.Fatal(err)
	}
	cfg := raftstore.DefaultConfig()
	cfg.NodeID = "n1"
	cfg.RaftAddr = "10.0.0.1:7946"
	cfg.PublicURL = "https://n1.example.com"
	cfg.DataDir = "/var/lib/parley/raft"
	cfg.Secret = "parley-cluster-v1:..." // from raftstore.GenerateSecret at `parley cluster init`
	cfg.Peers = peers
	cfg.Logger = slog.Default()
	store, err := raftstore.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}
	var cs core.ClusterState = store
	claim, err := cs.ClaimRoom(ctx, "lobby", "")
	if err != nil {
		log.Fatal(err)
	}
	if !claim.OwnedBy(cs.LocalNode()) {
		log.Printf("redirect the client to %s", claim.OwnerURL)
		return
	}
	_ = cs.RecordPresence(ctx, core.PresenceChange{PresenceEvent: core.PresenceEvent{
		Kind: core.PresenceJoined, Room: "lobby", Identity: "alice", ParticipantID: "PA_x", At: time.Now(),
	}, Session: "SE_y"})
	store.WatchCluster(ctx, func(ev core.ClusterEvent) {
		if ev.Kind == core.ClusterRoomReleased && ev.Room.Owner == cs.LocalNode() {
			log.Printf("room %s is no longer ours: move its participants", ev.Room.Room)
		}
	})
}
