package raftstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/core"
)

// Status is one node's view of the cluster, for `parley cluster status`.
type Status struct {
	Node         string       `json:"node"`
	Addr         string       `json:"addr"`
	State        string       `json:"state"` // Leader, Follower, Candidate, Shutdown
	Leader       string       `json:"leader,omitempty"`
	LeaderAddr   string       `json:"leader_addr,omitempty"`
	Term         uint64       `json:"term"`
	LastLogIndex uint64       `json:"last_log_index"`
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"` // last command applied to the state
	LastContact  time.Time    `json:"last_contact,omitzero"`
	Fatal        string       `json:"fatal,omitempty"`
	Nodes        []NodeStatus `json:"nodes"`
}

// NodeStatus describes one node in a Status.
type NodeStatus struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	PublicURL string `json:"public_url,omitempty"`
	// Suffrage is "Voter" or "Nonvoter" for members of the raft
	// configuration, "" for registry entries outside it.
	Suffrage     string `json:"suffrage,omitempty"`
	Registered   bool   `json:"registered"`
	Draining     bool   `json:"draining,omitempty"`
	Down         bool   `json:"down,omitempty"`
	Rooms        int    `json:"rooms"`
	Participants int    `json:"participants"`
	// Health is the leader's view: "leader", "ok" or "unreachable"; on a
	// follower, "leader" for the leader and "unknown" for the others.
	Health      string    `json:"health"`
	SilentSince time.Time `json:"silent_since,omitzero"`
}

// Status returns this node's view of the cluster. On the leader it
// includes which peers raft cannot reach; on a follower, when it last
// heard from the leader.
func (s *Store) Status() Status {
	st := Status{
		Node: s.id, Addr: s.advertise, State: s.raft.State().String(),
		Term: s.raft.CurrentTerm(), LastLogIndex: s.raft.LastIndex(),
		CommitIndex: s.raft.CommitIndex(), AppliedIndex: s.fsm.applied(),
	}
	if err := s.FatalErr(); err != nil {
		st.Fatal = err.Error()
	}
	addr, id := s.raft.LeaderWithID()
	st.Leader, st.LeaderAddr = string(id), string(addr)
	if s.raft.State() != raft.Leader {
		st.LastContact = s.raft.LastContact()
	}
	byID := map[string]*NodeStatus{}
	var order []string
	node := func(id string) *NodeStatus {
		if n, ok := byID[id]; ok {
			return n
		}
		n := &NodeStatus{ID: id}
		byID[id] = n
		order = append(order, id)
		return n
	}
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			n := node(string(srv.ID))
			n.RaftAddr, n.Suffrage = string(srv.Address), srv.Suffrage.String()
		}
	}
	s.fsm.read(func(fs *state) {
		for _, id := range sortedKeys(fs.Nodes) {
			r, n := fs.Nodes[id], node(id)
			n.Registered, n.PublicURL, n.Draining, n.Down = true, r.PublicURL, r.Draining, r.Down
			if n.RaftAddr == "" {
				n.RaftAddr = r.RaftAddr
			}
		}
		for _, r := range fs.Rooms {
			node(r.Owner).Rooms++
		}
		for _, p := range fs.Presence {
			node(p.Node).Participants++
		}
	})
	for _, id := range order {
		n := byID[id]
		n.Health = s.health(id, st.Leader)
		if silent, ok := s.mon.health(id); ok && !silent.IsZero() {
			n.SilentSince = silent
		}
		st.Nodes = append(st.Nodes, *n)
	}
	sortNodeStatus(st.Nodes)
	return st
}

func (s *Store) health(id, leader string) string {
	if id == leader {
		return "leader"
	}
	silent, ok := s.mon.health(id)
	switch {
	case !ok:
		return "unknown"
	case silent.IsZero():
		return "ok"
	default:
		return "unreachable"
	}
}

func sortNodeStatus(ns []NodeStatus) {
	slices.SortFunc(ns, func(a, b NodeStatus) int { return strings.Compare(a.ID, b.ID) })
}

// Admin talks to a running cluster from outside it, for the CLI: it holds
// the cluster secret (or TLS files) and calls a node's forwarding RPC.
type Admin struct {
	layer *netLayer
	rpc   *rpcClient
}

// NewAdmin returns an Admin that authenticates with the cluster secret, or
// with files when secret is empty. timeout bounds dialing.
func NewAdmin(secret string, files *TLSFiles, timeout time.Duration) (*Admin, error) {
	var creds *credentials
	var err error
	switch {
	case secret != "":
		creds, err = secretCredentials(secret, core.NewID("admin-"))
	case files != nil:
		creds, err = fileCredentials(files)
	default:
		err = fmt.Errorf("%w: a cluster secret or TLS files are required", ErrInvalidConfig)
	}
	if err != nil {
		return nil, err
	}
	layer := newNetLayer(nil, "", creds, timeout, slog.New(slog.DiscardHandler))
	return &Admin{layer: layer, rpc: newRPCClient(layer, 1)}, nil
}

// Status returns the Status of the node at raft address addr.
func (a *Admin) Status(ctx context.Context, addr string) (Status, error) {
	var st Status
	body, err := a.rpc.call(ctx, addr, opStatus, 0, nil)
	if err != nil {
		return st, public(err)
	}
	err = json.Unmarshal(body, &st)
	return st, err
}

// RemoveNode asks the node at addr to remove node id from the cluster.
func (a *Admin) RemoveNode(ctx context.Context, addr, id string) error {
	body, _ := json.Marshal(memberRequest{ID: id})
	_, err := a.rpc.call(ctx, addr, opRemove, 0, body)
	return public(err)
}

// Close drops the Admin's connections.
func (a *Admin) Close() {
	a.rpc.close()
	a.layer.close()
}
