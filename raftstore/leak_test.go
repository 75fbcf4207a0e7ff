package raftstore

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
	"go.uber.org/goleak"
)

// TestNoGoroutinesAfterShutdown exercises every background part of a
// cluster (forwarding, watchers, queued presence, failure monitor,
// snapshots, a node leaving) and checks that Shutdown leaves no goroutine
// behind.
func TestNoGoroutinesAfterShutdown(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 30*time.Second)
	f := c.followers()[0]
	wctx, stopWatch := context.WithCancel(context.Background())
	got := make(chan struct{}, 100)
	f.s.WatchCluster(wctx, func(core.ClusterEvent) { got <- struct{}{} })
	c.leader(5*time.Second).s.WatchCluster(context.Background(), func(core.ClusterEvent) {}) // ended by Shutdown
	if _, err := f.s.ClaimRoom(ctx, "leaky", ""); err != nil {
		t.Fatal(err)
	}
	<-got
	stopWatch()
	if err := f.s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// The follower drains and leaves; the others carry on without it.
	if err := f.s.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "node left", func() bool {
		for _, nd := range c.running() {
			if nd != f && len(nd.s.Status().Nodes) != 2 {
				return false
			}
		}
		return true
	})
	c.shutdownAll()
	goleak.VerifyNone(t, ignore)
}
