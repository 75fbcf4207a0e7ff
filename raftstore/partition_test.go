package raftstore

import (
	"errors"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// TestPartitionedLeaderServesNoConsistentRead cuts the leader off from
// both followers at the transport (every connection to or from them is
// dropped and refused), lets the majority elect a new leader and change
// the state, and checks that the old leader refuses consistent reads
// rather than serve its stale replica, and catches up once healed.
func TestPartitionedLeaderServesNoConsistentRead(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ApplyTimeout = 2 * time.Second })
	ctx := ctxT(t, 60*time.Second)
	old := c.leader(15 * time.Second)
	first, err := old.s.ClaimRoom(ctx, "p", "")
	if err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, nd := range c.nodes {
		if nd != old {
			others = append(others, nd.id)
		}
	}
	old.s.layer.cutOff(others...)

	// The majority side elects a leader among themselves.
	var nl *testNode
	eventually(t, 15*time.Second, "a new leader on the majority side", func() bool {
		for _, id := range others {
			nd := c.node(id)
			if nd.s.raft.State().String() == "Leader" {
				nl = nd
				return true
			}
		}
		return false
	})
	if err := old.s.ReleaseRoom(ctx, "p", first.Epoch); err == nil {
		t.Fatal("the cut-off leader committed a write")
	}
	// The old owner cannot release; the majority ends its rooms (as its
	// failure monitor would after the grace period) and claims the room.
	if _, err := nl.s.Apply(ctx, &NodeDown{ID: old.id, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	second, err := nl.s.ClaimRoom(ctx, "p", "")
	if err != nil || second.Owner != nl.id || second.Epoch <= first.Epoch {
		t.Fatalf("claim on the majority side: %+v, %v", second, err)
	}

	// The old leader's replica is stale, and it knows better than to say so.
	if got, _ := old.s.Room("p"); got != first {
		t.Fatalf("old leader's local replica moved without contact: %+v", got)
	}
	start := time.Now()
	err = old.s.Sync(ctxT(t, 10*time.Second))
	if err == nil {
		t.Fatal("the partitioned old leader served a consistent read")
	}
	if core.CodeOf(err) != core.CodeUnavailable || !(errors.Is(err, ErrNoLeader) || errors.Is(err, ErrLeadershipLost)) {
		t.Fatalf("consistent read error = %v", err)
	}
	t.Logf("old leader refused the consistent read after %v: %v", time.Since(start).Round(time.Millisecond), err)

	// Heal: it rejoins as a follower and catches up.
	old.s.layer.restore(others...)
	eventually(t, 30*time.Second, "old leader synced", func() bool { return old.s.Sync(ctx) == nil })
	if got, _ := old.s.Room("p"); got != second {
		t.Fatalf("after healing the old leader sees %+v, want %+v", got, second)
	}
	c.converged(15 * time.Second)
}
