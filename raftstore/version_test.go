package raftstore

import (
	"errors"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// maxKind must name the last kind this binary decodes.
func TestMaxKindIsTheLastKind(t *testing.T) {
	if newCommand(maxKind) == nil || newCommand(maxKind+1) != nil {
		t.Fatalf("maxKind %v is not the last known command kind", maxKind)
	}
}

// A node registered by an older binary blocks the commands it does not
// know, on every proposer, until it registers again with a newer binary;
// commands it knows go on.
func TestCommandsWaitForEveryNodeToKnowThem(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	c.waitReady(c.running()...)
	f := c.followers()[0]
	for _, nd := range c.running() {
		if n, ok := nd.s.Node(nd.s.ID()); !ok || n.Down {
			t.Fatalf("%s not registered", nd.s.ID())
		}
	}
	// An old binary's registration: no MaxKind.
	if _, err := f.s.Apply(ctx, &RegisterNode{ID: "old", RaftAddr: "127.0.0.1:1", PublicURL: "ws://127.0.0.1:1/v1/signal"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the old node on every replica", func() bool {
		for _, nd := range c.running() {
			if _, ok := nd.s.Node("old"); !ok {
				return false
			}
		}
		return true
	})
	for _, nd := range c.running() {
		_, err := nd.s.RotateSigningKey(ctx)
		if !errors.Is(err, ErrUpgradePending) || core.CodeOf(err) != core.CodeUnavailable {
			t.Fatalf("%s: rotate with an old node registered: %v", nd.s.ID(), err)
		}
	}
	if _, err := f.s.ClaimRoom(ctx, "still-works", ""); err != nil {
		t.Fatalf("a kind every node knows: %v", err)
	}
	// The node comes back with the new binary.
	if _, err := f.s.Apply(ctx, &RegisterNode{ID: "old", RaftAddr: "127.0.0.1:1", PublicURL: "ws://127.0.0.1:1/v1/signal", MaxKind: maxKind}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "rotation allowed once every node knows it", func() bool {
		_, err := f.s.RotateSigningKey(ctx)
		return err == nil
	})
}
