package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Peer is one voter of the initial cluster.
type Peer struct {
	ID   string // node id
	Addr string // raft address, host:port, as the other nodes dial it
}

// ParsePeers parses a comma-separated list of id=host:port pairs, the form
// of the --peers flag.
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("%w: peer %q is not id=host:port", ErrInvalidConfig, part)
		}
		peers = append(peers, Peer{ID: strings.TrimSpace(id), Addr: strings.TrimSpace(addr)})
	}
	return peers, nil
}

// TLSFiles configures mutual TLS from an operator's own cluster CA instead
// of a cluster secret. Every node's certificate must chain to the CA and be
// usable for both server and client authentication.
type TLSFiles struct {
	CAFile   string // PEM bundle of the cluster CA certificate(s)
	CertFile string // this node's PEM certificate (chain)
	KeyFile  string // this node's PEM private key
}

// Config configures a Store. Start from DefaultConfig, fill in the identity
// fields and exactly one of Secret and TLSFiles, then call Open.
type Config struct {
	// NodeID identifies this node for good: letters, digits, '_', '-' and
	// '.', at most 64 characters. Changing it on an existing data directory
	// makes the node a stranger to its cluster.
	NodeID string
	// RaftAddr is the host:port the node listens on for the cluster
	// transport (raft and write forwarding share it).
	RaftAddr string
	// AdvertiseAddr is the host:port other nodes dial; RaftAddr when empty.
	// It must name a concrete host, not 0.0.0.0 or [::].
	AdvertiseAddr string
	// Listener, when set, is an open TCP listener used instead of listening
	// on RaftAddr (tests pass one bound to port 0). The Store closes it.
	Listener net.Listener
	// PublicURL is the base URL of this node's signaling, where clients are
	// redirected for rooms it owns.
	PublicURL string
	// DataDir holds the log (wal/), snapshots (snapshots/) and a lock file.
	DataDir string

	// Peers are the voters of a new cluster, this node included: every
	// voter gets the same list and bootstraps the same configuration. On a
	// data directory that already holds state it is ignored, so a node
	// restarts with the same command line.
	Peers []Peer
	// Join are raft addresses of existing members; a node with no state
	// asks them to add it as a voter. Exclusive with Peers. With neither,
	// a new node bootstraps a cluster of one.
	Join []string

	// Secret is the cluster secret from GenerateSecret: every node derives
	// the same CA from it and issues itself a certificate. Exclusive with
	// TLSFiles.
	Secret string
	// TLSFiles uses an operator's CA and certificates instead of a secret.
	TLSFiles *TLSFiles

	// Logger receives the store's and hashicorp/raft's logs. nil discards.
	Logger *slog.Logger

	// Raft timing. The defaults suit a LAN: a dead leader is replaced in
	// well under 2 s.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	MaxAppendEntries   int

	// Log compaction: a snapshot is taken when SnapshotThreshold entries
	// accumulated (checked every SnapshotInterval), keeping TrailingLogs
	// entries behind it for slow followers, and SnapshotRetain snapshots.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int

	// TransportTimeout bounds dialing (with the TLS handshake) and each
	// I/O of the cluster transport.
	TransportTimeout time.Duration
	// TransportMaxPool is how many idle connections to keep per peer.
	TransportMaxPool int

	// ApplyTimeout bounds a write, including forwarding to the leader and
	// waiting out an election.
	ApplyTimeout time.Duration
	// FailureGrace is how long the leader waits after it lost contact with
	// a node before it releases the node's rooms and ends its presence.
	FailureGrace time.Duration
	// WatchdogInterval is how often an idle leader checks that its own
	// log writes complete; WatchdogTimeout is how long such a probe may
	// take before the leader fences itself (see Store.Fatal). The timeout
	// must stay well above the worst fsync latency of a healthy disk.
	WatchdogInterval time.Duration
	WatchdogTimeout  time.Duration
}

// DefaultConfig returns a Config with the LAN defaults and no identity.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		MaxAppendEntries:   64,
		SnapshotThreshold:  4096,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       4096,
		SnapshotRetain:     2,
		TransportTimeout:   2 * time.Second,
		TransportMaxPool:   4,
		ApplyTimeout:       5 * time.Second,
		FailureGrace:       10 * time.Second,
		WatchdogInterval:   time.Second,
		WatchdogTimeout:    5 * time.Second,
	}
}

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate reports every problem with c, wrapped in ErrInvalidConfig.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nodeIDRE.MatchString(c.NodeID) {
		bad("node id %q must match %s", c.NodeID, nodeIDRE)
	}
	if c.Listener == nil && c.RaftAddr == "" {
		bad("raft address is required")
	}
	if err := checkAdvertise(c.advertise()); err != nil {
		errs = append(errs, err)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
			bad("public url %q is not an absolute URL", c.PublicURL)
		}
	}
	if c.DataDir == "" {
		bad("data directory is required")
	}
	errs = append(errs, c.validateMembership()...)
	errs = append(errs, c.validateSecurity()...)
	errs = append(errs, c.validateTiming()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c *Config) validateMembership() []error {
	var errs []error
	if len(c.Peers) > 0 && len(c.Join) > 0 {
		errs = append(errs, errors.New("give peers (bootstrap) or join, not both"))
	}
	ids, addrs, self := map[string]bool{}, map[string]bool{}, false
	for _, p := range c.Peers {
		if !nodeIDRE.MatchString(p.ID) {
			errs = append(errs, fmt.Errorf("peer id %q must match %s", p.ID, nodeIDRE))
		}
		if err := checkAdvertise(p.Addr); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", p.ID, err))
		}
		if ids[p.ID] || addrs[p.Addr] {
			errs = append(errs, fmt.Errorf("peer %s=%s is listed twice", p.ID, p.Addr))
		}
		ids[p.ID], addrs[p.Addr] = true, true
		if p.ID == c.NodeID {
			self = true
			if p.Addr != c.advertise() {
				errs = append(errs, fmt.Errorf("peer entry for this node has address %s, but it advertises %s", p.Addr, c.advertise()))
			}
		}
	}
	if len(c.Peers) > 0 && !self {
		errs = append(errs, fmt.Errorf("peers must include this node (%s)", c.NodeID))
	}
	for _, a := range c.Join {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("join address %q: %w", a, err))
		}
	}
	return errs
}

func (c *Config) validateSecurity() []error {
	switch {
	case c.Secret != "" && c.TLSFiles != nil:
		return []error{errors.New("give a cluster secret or TLS files, not both")}
	case c.Secret != "":
		if _, err := ParseSecret(c.Secret); err != nil {
			return []error{err}
		}
	case c.TLSFiles != nil:
		if c.TLSFiles.CAFile == "" || c.TLSFiles.CertFile == "" || c.TLSFiles.KeyFile == "" {
			return []error{errors.New("TLS files need a CA, a certificate and a key")}
		}
	default:
		return []error{errors.New("a cluster secret or TLS files are required")}
	}
	return nil
}

func (c *Config) validateTiming() []error {
	var errs []error
	positive := map[string]time.Duration{
		"commit timeout": c.CommitTimeout, "snapshot interval": c.SnapshotInterval,
		"transport timeout": c.TransportTimeout, "apply timeout": c.ApplyTimeout,
		"failure grace": c.FailureGrace, "watchdog interval": c.WatchdogInterval,
		"watchdog timeout": c.WatchdogTimeout,
	}
	for name, d := range positive {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.SnapshotRetain < 1 {
		errs = append(errs, errors.New("snapshot retain must be at least 1"))
	}
	if c.TransportMaxPool < 1 {
		errs = append(errs, errors.New("transport max pool must be at least 1"))
	}
	rc := c.raftConfig(nil)
	if err := raft.ValidateConfig(rc); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// advertise returns the address other nodes dial.
func (c *Config) advertise() string {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr
	}
	if c.RaftAddr == "" && c.Listener != nil {
		return c.Listener.Addr().String()
	}
	return c.RaftAddr
}

func checkAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("address %q needs a fixed port", addr)
	}
	if host == "" {
		return fmt.Errorf("address %q needs a host others can dial", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("address %q is unspecified; set an advertise address", addr)
	}
	return nil
}

// raftConfig translates c into hashicorp/raft's configuration.
func (c *Config) raftConfig(logger *slog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.MaxAppendEntries = c.MaxAppendEntries
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.ShutdownOnRemove = true
	// An unbuffered apply channel: every future raft accepts is then
	// tracked by its leader loop and answered even when raft shuts down.
	rc.BatchApplyCh = false
	rc.NoLegacyTelemetry = true
	if logger != nil {
		rc.Logger = newHCLog(logger, "raft")
	}
	return rc
}
