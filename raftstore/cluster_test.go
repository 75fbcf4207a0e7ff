package raftstore

import (
	"testing"
	"time"
)

func TestClusterBootstrapAndForwardedClaim(t *testing.T) {
	c := newCluster(t, 3, nil)
	fs := c.followers()
	f := fs[0]
	claim, err := f.s.ClaimRoom(ctxT(t, 10*time.Second), "lobby", "meta")
	if err != nil {
		t.Fatal(err)
	}
	if claim.Owner != f.id || claim.OwnerURL != f.cfg.PublicURL || claim.Epoch == 0 {
		t.Fatalf("claim = %+v", claim)
	}
	c.converged(5 * time.Second)
	for _, nd := range c.nodes {
		got, ok := nd.s.Room("lobby")
		if !ok || got != claim {
			t.Fatalf("%s sees %+v, %v; want %+v", nd.id, got, ok, claim)
		}
		if len(nd.s.Nodes()) != 3 {
			t.Fatalf("%s sees nodes %+v", nd.id, nd.s.Nodes())
		}
	}
}
