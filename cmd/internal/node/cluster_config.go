package node

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/raftstore"
)

// DefaultRaftAddr is where a cluster node listens for its peers when
// --raft-addr is not given.
const DefaultRaftAddr = "127.0.0.1:7073"

// ClusterConfig makes a node a member of a cluster that keeps its shared
// state (room placement, presence, plugin set) in Raft (package raftstore).
// A node is clustered when Peers or Join is given or a cluster secret is
// configured (Secret, or the file `parley cluster init` writes into the
// data dir); otherwise it runs alone, with no Raft at all.
type ClusterConfig struct {
	// NodeID names the node in the cluster for good. Empty means the id
	// persisted in the data dir (node.id); a given id is persisted there.
	NodeID string `json:"node_id,omitempty"`
	// RaftAddr is the TCP host:port the node listens on for its peers
	// (Raft and forwarded writes, mutual TLS).
	RaftAddr string `json:"raft_addr"`
	// AdvertiseAddr is the host:port peers dial; RaftAddr when empty.
	AdvertiseAddr string `json:"advertise_addr,omitempty"`
	// Peers are the voters of a new cluster, "id=host:port,...", this
	// node included, identical on every voter. Ignored once the node has
	// state, so it restarts with the same command line.
	Peers string `json:"peers,omitempty"`
	// Join are raft addresses of members of an existing cluster that a
	// new node asks to add it.
	Join []string `json:"join,omitempty"`
	// Secret is the cluster secret (raftstore.GenerateSecret). Empty means
	// the one in the data dir, if any.
	Secret string `json:"-"`
	// PublicURL is the signaling URL clients are redirected to for rooms
	// this node hosts. Empty means the node's own WebSocket signaling URL.
	PublicURL string `json:"public_url,omitempty"`
	// FailureGrace is how long the leader waits after losing contact with
	// a node before it moves the node's rooms; 0 keeps raftstore's default.
	FailureGrace time.Duration `json:"failure_grace,omitempty"`

	// Listener, when set, is the open raft listener (tests bind port 0).
	Listener net.Listener `json:"-"`
	// Tune, when set, adjusts the raft configuration before it is opened
	// (tests shorten timeouts).
	Tune func(*raftstore.Config) `json:"-"`
}

// DefaultClusterConfig returns the defaults: no cluster, raft on
// DefaultRaftAddr once there is one.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{RaftAddr: DefaultRaftAddr}
}

// Validate reports invalid cluster settings. Whether they make a working
// cluster is checked when the node opens its replica.
func (c ClusterConfig) Validate() error {
	var errs []error
	if c.Peers != "" && len(c.Join) > 0 {
		errs = append(errs, errors.New("cluster: give --peers (a new cluster) or --join (an existing one), not both"))
	}
	if _, err := raftstore.ParsePeers(c.Peers); err != nil {
		errs = append(errs, fmt.Errorf("cluster: peers: %w", err))
	}
	if c.Secret != "" {
		if _, err := raftstore.ParseSecret(c.Secret); err != nil {
			errs = append(errs, fmt.Errorf("cluster: secret: %w", err))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" ||
			(u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("cluster: public url %q must be an absolute ws, wss, http or https URL", c.PublicURL))
		}
	}
	if c.FailureGrace < 0 {
		errs = append(errs, errors.New("cluster: failure grace must not be negative"))
	}
	return errors.Join(errs...)
}

// Clustered reports whether a node started with c joins a cluster.
func (c Config) Clustered() bool {
	cc := c.Cluster
	if cc.Peers != "" || len(cc.Join) > 0 || cc.Secret != "" {
		return true
	}
	_, err := os.Stat(c.Paths().ClusterSecretFile)
	return err == nil
}

// ClusterSecret returns the configured cluster secret, or the one in the
// data dir, or "" when there is none.
func (c Config) ClusterSecret() (string, error) {
	if c.Cluster.Secret != "" {
		return c.Cluster.Secret, nil
	}
	path := c.Paths().ClusterSecretFile
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("node: read %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if _, err := raftstore.ParseSecret(s); err != nil {
		return "", fmt.Errorf("node: %s: %w", path, err)
	}
	return s, nil
}

// WriteClusterSecret stores secret in the data dir (mode 0600), where a
// node started without --cluster-secret finds it. It refuses to replace a
// different secret.
func WriteClusterSecret(cfg Config, secret string) (string, error) {
	p := cfg.Paths()
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("node: data dir: %w", err)
	}
	if old, err := os.ReadFile(p.ClusterSecretFile); err == nil && strings.TrimSpace(string(old)) != secret {
		return "", fmt.Errorf("node: %s already holds a cluster secret; delete it first to replace it", p.ClusterSecretFile)
	}
	if err := os.WriteFile(p.ClusterSecretFile, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node: write %s: %w", p.ClusterSecretFile, err)
	}
	return p.ClusterSecretFile, nil
}

// deriveTokenSecret derives the development-token secret every node of a
// cluster shares from the cluster secret.
func deriveTokenSecret(clusterSecret string) []byte {
	sum := sha256.Sum256([]byte("parley dev-token secret v1\x00" + clusterSecret))
	return []byte(hex.EncodeToString(sum[:]))
}

// loadNodeID returns the node id: the configured one (persisted in the
// data dir), or the persisted one, created on first start.
func (n *Node) loadNodeID() (string, error) {
	want := n.cfg.Cluster.NodeID
	if want == "" {
		return readOrCreate(n.paths.NodeIDFile, func() string { return core.NewID(core.PrefixNode) })
	}
	b, err := os.ReadFile(n.paths.NodeIDFile)
	if err == nil && strings.TrimSpace(string(b)) != want {
		if _, serr := os.Stat(n.paths.RaftDir); serr == nil {
			return "", fmt.Errorf("node: data dir %s belongs to cluster node %q, not %q: use that id or another data dir",
				n.paths.DataDir, strings.TrimSpace(string(b)), want)
		}
	}
	if err == nil && strings.TrimSpace(string(b)) == want {
		return want, nil
	}
	if err := os.WriteFile(n.paths.NodeIDFile, []byte(want+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node: write %s: %w", n.paths.NodeIDFile, err)
	}
	return want, nil
}

// RecoverCluster rewrites the voters of the stopped node cfg describes, for
// a cluster that lost its quorum for good: voters is "id=host:port,..."
// (typically the surviving nodes). See raftstore.RecoverCluster.
func RecoverCluster(cfg Config, voters string, log *slog.Logger) error {
	peers, err := raftstore.ParsePeers(voters)
	if err != nil {
		return err
	}
	p := cfg.Paths()
	id := cfg.Cluster.NodeID
	if id == "" {
		b, err := os.ReadFile(p.NodeIDFile)
		if err != nil {
			return fmt.Errorf("node: no node id in %s: %w", p.DataDir, err)
		}
		id = strings.TrimSpace(string(b))
	}
	secret, err := cfg.ClusterSecret()
	if err != nil {
		return err
	}
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.RaftAddr, rc.AdvertiseAddr = id, cfg.Cluster.RaftAddr, cfg.Cluster.AdvertiseAddr
	rc.DataDir, rc.Secret, rc.Logger = p.RaftDir, secret, log
	return raftstore.RecoverCluster(rc, peers)
}
