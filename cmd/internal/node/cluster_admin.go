package node

import (
	"context"
	"time"

	"github.com/parleyhq/parley/core"
)

// syncTimeout bounds the leader round trip of a consistent read.
const syncTimeout = 5 * time.Second

// clusterAdmin implements edge.ClusterAdmin over the node's replica.
type clusterAdmin struct{ n *Node }

// ClusterStatus implements edge.ClusterAdmin.
func (a clusterAdmin) ClusterStatus() any {
	if a.n.store == nil {
		return map[string]string{"state": "not started"}
	}
	return a.n.store.Status()
}

// ClusterRoom implements edge.ClusterAdmin.
func (a clusterAdmin) ClusterRoom(ctx context.Context, room string, consistent bool) (any, bool, error) {
	s := a.n.store
	if s == nil {
		return nil, false, errNoStore
	}
	if consistent {
		ctx, cancel := context.WithTimeout(ctx, syncTimeout)
		defer cancel()
		if err := s.Sync(ctx); err != nil {
			return nil, false, err
		}
	}
	c, ok := s.Room(room)
	return c, ok, nil
}

// ClusterDrain implements edge.ClusterAdmin: the node drains and leaves,
// and Drained is closed so that the process stops.
func (a clusterAdmin) ClusterDrain(ctx context.Context) error {
	if a.n.store == nil {
		return errNoStore
	}
	if err := a.n.Drain(ctx); err != nil {
		return &core.Error{Code: core.CodeUnavailable, Message: "drain failed", Err: err}
	}
	a.n.drainedOnce.Do(func() { close(a.n.drained) })
	return nil
}

// Drained is closed once the node was drained through the admin API
// (`parley cluster drain`): the process should shut it down and exit.
func (n *Node) Drained() <-chan struct{} { return n.drained }
