// Package node assembles one whole Parley node from its parts: the media
// engine, the control plane, signaling and the HTTP face. cmd/parley runs
// one; tests run several in one process.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/core/room"
	"github.com/parleyhq/parley/core/sfu"
	"github.com/parleyhq/parley/core/signal"
	"github.com/parleyhq/parley/edge"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/raftstore"
)

// Version is the build's version, set by the linker (-X).
var Version = "dev"

// Node is one running Parley node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	paths  Paths
	id     string
	secret []byte

	engine     *sfu.Engine
	plugins    *plugins.Manager
	pluginDir  string
	adminToken string
	rooms      *room.Manager
	signal     *signal.Server
	http       *edge.Server
	pluginMu   sync.Mutex                   // serializes syncs of the plugin set
	pluginKick chan struct{}                // wakes pluginLoop
	hooks      atomic.Pointer[nodeWebhooks] // presence webhooks (webhooks.go); set in New or, in a cluster, Start

	// Cluster membership (cluster.go); store is nil on a single node.
	clustered     bool
	clusterSecret string
	cluster       *clusterRef
	store         *raftstore.Store
	left          bool // Drain left the cluster
	drained       chan struct{}
	drainedOnce   sync.Once
	bgCancel      context.CancelFunc
	bgMu          sync.Mutex
	bgClosed      bool
	bg            sync.WaitGroup
}

// New prepares a node: it creates the data directory, loads or creates the
// node id and token secret, and opens the media port. Start serves.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log, paths: cfg.Paths(), pluginKick: make(chan struct{}, 1), drained: make(chan struct{})}
	if err := n.loadState(); err != nil {
		return nil, err
	}
	if n.clustered = cfg.Clustered(); n.clustered {
		secret, err := cfg.ClusterSecret()
		if err != nil {
			return nil, err
		}
		if secret == "" {
			return nil, errors.New("node: a cluster needs its secret: --cluster-secret, PARLEY_CLUSTER_SECRET, or `parley cluster init` in the data dir")
		}
		n.clusterSecret = secret
		n.cluster = &clusterRef{id: n.id}
	}
	if err := n.openPlugins(); err != nil {
		n.closePlugins()
		return nil, err
	}
	if err := n.openWebhooks(); err != nil {
		n.closePlugins()
		return nil, err
	}
	if err := n.assemble(); err != nil {
		n.closeMedia()
		n.closeWebhooks()
		n.closePlugins()
		return nil, err
	}
	return n, nil
}

func (n *Node) assemble() error {
	media := n.cfg.Media
	if n.cfg.Dev {
		media.IncludeLoopback = true
	}
	engine, err := sfu.New(media, n.log.With("part", "sfu"))
	if err != nil {
		return fmt.Errorf("node: media engine: %w", err)
	}
	n.engine = engine
	rc := n.cfg.Room
	rc.NodeID = n.id
	policy := n.cfg.Policy
	if policy == nil {
		policy = n.plugins
	}
	deps := room.Deps{Engine: engine, Policy: policy, Presence: n.presenceSink(), Log: n.log.With("part", "room")}
	if n.cluster != nil {
		deps.Cluster = n.cluster
	}
	n.rooms, err = room.NewManager(rc, deps)
	if err != nil {
		return fmt.Errorf("node: rooms: %w", err)
	}
	auth := n.cfg.Auth
	if auth == nil {
		auth = nodeAuth{pm: n.plugins, dev: &devtoken.Verifier{Secret: n.secret, Skew: 30 * time.Second}}
	}
	n.signal, err = signal.New(n.cfg.Signal, signal.Deps{Auth: auth, Rooms: n.rooms, Log: n.log.With("part", "signal")})
	if err != nil {
		return fmt.Errorf("node: signaling: %w", err)
	}
	hc := n.cfg.HTTP
	hc.Dev = n.cfg.Dev
	hc.AdminToken = n.adminToken
	hdeps := edge.Deps{
		Signal: n.signal, Info: n.info, Log: n.log.With("part", "http"), Metrics: n.metrics(), Plugins: pluginAdmin{n},
		SigningKeys: webhookAdmin{n},
		DevToken: func(roomName, identity string) (string, error) {
			return n.MintToken(roomName, identity, time.Hour)
		},
	}
	if n.clustered {
		hdeps.Cluster = clusterAdmin{n}
	}
	if hdeps.API, err = n.apiDeps(); err != nil {
		return err
	}
	n.http, err = edge.New(hc, hdeps)
	if err != nil {
		return fmt.Errorf("node: http: %w", err)
	}
	return nil
}

// Start opens the HTTP listener. The media port is already open.
func (n *Node) Start(context.Context) error {
	if err := n.http.Start(); err != nil {
		return err
	}
	n.runWebhooks()
	if n.clustered {
		if err := n.openCluster(); err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = n.http.Shutdown(ctx)
			return err
		}
	}
	n.log.Info("parley node started", "node_id", n.id, "version", Version,
		"http", n.http.URL(), "signal", n.http.SignalURL(), "webtransport", n.http.WebTransportURL(), "media_udp_port", n.engine.Port(),
		"data_dir", n.paths.DataDir, "dev", n.cfg.Dev)
	return nil
}

// Shutdown stops the node gracefully: clients are told, participants leave
// (presence is reported), connections close, the cluster replica (if any)
// shuts down, the media port closes. It does not leave the cluster: see
// Drain.
func (n *Node) Shutdown(ctx context.Context) error {
	err := n.http.Shutdown(ctx)
	n.rooms.Close(room.ReasonShutdown)
	if cerr := n.stopCluster(ctx); cerr != nil && err == nil {
		err = cerr
	}
	n.drainWebhooks(ctx)
	n.closeWebhooks()
	n.closeMedia()
	n.closePlugins()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("node: shutdown incomplete: %w", err)
	}
	return err
}

func (n *Node) closePlugins() {
	if n.plugins == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.plugins.Close(ctx); err != nil {
		n.log.Warn("close plugins", "err", err)
	}
}

func (n *Node) closeMedia() {
	if n.engine != nil {
		if err := n.engine.Close(); err != nil {
			n.log.Warn("close media engine", "err", err)
		}
	}
}

// ID returns the node id.
func (n *Node) ID() string { return n.id }

// URL returns the HTTP base URL.
func (n *Node) URL() string { return n.http.URL() }

// SignalURL returns the WebSocket signaling URL.
func (n *Node) SignalURL() string { return n.http.SignalURL() }

// WebTransportURL returns the WebTransport (HTTP/3) signaling URL, or ""
// when WebTransport is off.
func (n *Node) WebTransportURL() string { return n.http.WebTransportURL() }

// CertInfo describes the HTTP/3 certificate and the hashes a client pins;
// false when WebTransport is off.
func (n *Node) CertInfo() (edge.CertInfo, bool) { return n.http.CertInfo() }

// MediaPort returns the UDP port media uses.
func (n *Node) MediaPort() int { return n.engine.Port() }

// SignalStats returns signaling session counts.
func (n *Node) SignalStats() signal.Stats { return n.signal.Stats() }

// Rooms returns the node's room manager.
func (n *Node) Rooms() *room.Manager { return n.rooms }

// MintToken mints a development token for identity in room with all grants.
func (n *Node) MintToken(roomName, identity string, ttl time.Duration) (string, error) {
	return devtoken.Mint(n.secret, core.Claims{Identity: identity, Room: roomName, Grants: core.AllGrants}, ttl, time.Now())
}

// MintTokenWith mints a development token with explicit claims.
func (n *Node) MintTokenWith(c core.Claims, ttl time.Duration) (string, error) {
	return devtoken.Mint(n.secret, c, ttl, time.Now())
}

func (n *Node) info() edge.Info {
	info := edge.Info{
		Version: Version, NodeID: n.id, MediaPort: n.engine.Port(), Rooms: len(n.rooms.Rooms()),
		Features: []string{"sfu", "websocket", "trickle-ice", "resume", "data-messages", "nack", "pli", "remb"},
	}
	if n.http != nil && n.http.WebTransportURL() != "" {
		info.Features = append(info.Features, "webtransport")
	}
	if n.store != nil {
		info.Features = append(info.Features, "cluster", "redirect")
		info.Extra = map[string]any{"cluster": n.clusterInfo()}
	}
	return info
}

// MintWithSecret mints a development token with an explicit secret.
func MintWithSecret(secret []byte, c core.Claims, ttl time.Duration) (string, error) {
	return devtoken.Mint(secret, c, ttl, time.Now())
}
