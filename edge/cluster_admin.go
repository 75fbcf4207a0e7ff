package edge

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/core"
)

// ClusterAdmin is what the cluster admin API needs from a clustered node.
// Methods are called from HTTP handlers, concurrently.
type ClusterAdmin interface {
	// ClusterStatus describes the cluster as this node sees it: members,
	// leader, term, last contact, rooms per node.
	ClusterStatus() any
	// ClusterRoom returns the claim on room and whether there is one. A
	// consistent read first confirms with a current leader that the node's
	// replica is up to date, and fails (code unavailable) on a node cut
	// off from the majority rather than answer from a stale view.
	ClusterRoom(ctx context.Context, room string, consistent bool) (any, bool, error)
	// ClusterDrain drains the node: no new rooms, its clients are moved to
	// other nodes, then it leaves the cluster and stops.
	ClusterDrain(ctx context.Context) error
}

func (s *Server) clusterRoutes(mux *http.ServeMux) {
	if s.deps.Cluster == nil {
		return
	}
	mux.HandleFunc("GET /v1/admin/cluster", s.admin(s.handleClusterStatus))
	mux.HandleFunc("GET /v1/admin/cluster/rooms/{name}", s.admin(s.handleClusterRoom))
	mux.HandleFunc("POST /v1/admin/cluster/drain", s.admin(s.handleClusterDrain))
}

func (s *Server) handleClusterStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.deps.Cluster.ClusterStatus())
}

// handleClusterRoom answers GET /v1/admin/cluster/rooms/{name}; with
// ?consistent=true the read is linearizable.
func (s *Server) handleClusterRoom(w http.ResponseWriter, r *http.Request) {
	consistent, _ := strconv.ParseBool(r.URL.Query().Get("consistent"))
	claim, ok, err := s.deps.Cluster.ClusterRoom(r.Context(), r.PathValue("name"), consistent)
	switch {
	case err != nil:
		status := http.StatusInternalServerError
		if errors.Is(err, core.ErrUnavailable) {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, err)
	case !ok:
		writeError(w, http.StatusNotFound, core.Errorf(core.CodeNotFound, "room %q is not claimed", r.PathValue("name")))
	default:
		writeJSON(w, http.StatusOK, claim)
	}
}

func (s *Server) handleClusterDrain(w http.ResponseWriter, r *http.Request) {
	if err := s.deps.Cluster.ClusterDrain(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"drained": true})
}

// SetDraining makes /healthz answer 503 "draining" ahead of Shutdown, so
// that load balancers stop sending clients to a node that hands its rooms
// over to the rest of its cluster.
func (s *Server) SetDraining() { s.draining.Store(true) }
