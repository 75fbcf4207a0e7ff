package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/room"
	"github.com/parleyhq/parley/core/sfu"
	"github.com/parleyhq/parley/core/signal"
	"github.com/parleyhq/parley/edge"
	"github.com/parleyhq/parley/edge/webhook"
	"github.com/parleyhq/parley/plugins"
)

// Config is a whole node's configuration: one section per part.
type Config struct {
	// DataDir holds the node id, the token secret and (later) the Raft log,
	// plugin cache and webhook outbox. Empty means DefaultDataDir().
	DataDir string
	// Dev relaxes security for local development: any web origin, loopback
	// media candidates, and a token endpoint for the landing page.
	Dev bool
	// TokenSecret, when set, is the HMAC secret for development tokens (at
	// least 16 bytes); otherwise a random one is kept in the data dir.
	TokenSecret string

	// PluginDir holds <name>.wasm plugins and their optional <name>.json
	// manifests. Empty means DefaultPluginDir(); "none" loads no plugins.
	PluginDir string
	Plugins   plugins.Config

	HTTP   edge.Config
	Media  sfu.Config
	Room   room.Config
	Signal signal.Config

	// Cluster makes the node a member of a cluster (see ClusterConfig).
	Cluster ClusterConfig

	// Webhooks tunes the delivery of presence webhooks.
	Webhooks webhook.Config

	// Auth, Policy and Presence replace the built-in development verifier,
	// the allow-all policy and the no-op presence sink.
	Auth     core.Authenticator
	Policy   core.Policy
	Presence core.Presence
}

// DefaultConfig returns a configuration that gives a working local node.
func DefaultConfig() Config {
	return Config{
		Plugins: plugins.DefaultConfig(),
		HTTP:    edge.DefaultConfig(), Media: sfu.DefaultConfig(),
		Room: room.DefaultConfig(), Signal: signal.DefaultConfig(),
		Cluster: DefaultClusterConfig(), Webhooks: webhook.DefaultConfig(),
	}
}

// Validate reports every invalid section.
func (c Config) Validate() error {
	var errs []error
	if c.TokenSecret != "" && len(c.TokenSecret) < 16 {
		errs = append(errs, errors.New("token-secret must be at least 16 bytes"))
	}
	for _, err := range []error{c.Plugins.Validate(), c.HTTP.Validate(), c.Media.Validate(), c.Room.Validate(), c.Signal.Validate(), c.Cluster.Validate(), c.webhookConfig().Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// webhookConfig is Webhooks, or the defaults when it is left zero.
func (c Config) webhookConfig() webhook.Config {
	if c.Webhooks == (webhook.Config{}) {
		return webhook.DefaultConfig()
	}
	return c.Webhooks
}

// Paths are the files a node keeps.
type Paths struct {
	DataDir     string `json:"data_dir"`
	NodeIDFile  string `json:"node_id_file"`
	SecretFile  string `json:"token_secret_file"`
	AdminFile   string `json:"admin_token_file"`
	PluginCache string `json:"plugin_cache_dir"`
	// ClusterSecretFile holds the cluster secret `parley cluster init`
	// wrote; RaftDir the node's replica of the cluster state.
	ClusterSecretFile string `json:"cluster_secret_file"`
	RaftDir           string `json:"raft_dir"`
	// WebhookDir holds a single node's webhook outbox (a cluster keeps
	// its outbox in the replica).
	WebhookDir string `json:"webhook_dir"`
}

// Paths returns where this configuration keeps its data.
func (c Config) Paths() Paths {
	dir := c.DataDir
	if dir == "" {
		dir = DefaultDataDir()
	}
	return Paths{
		DataDir:     dir,
		NodeIDFile:  filepath.Join(dir, "node.id"),
		SecretFile:  filepath.Join(dir, "token.secret"),
		AdminFile:   filepath.Join(dir, "admin.token"),
		PluginCache: filepath.Join(dir, "plugin-cache"),

		ClusterSecretFile: filepath.Join(dir, "cluster.secret"),
		RaftDir:           filepath.Join(dir, "raft"),
		WebhookDir:        filepath.Join(dir, "webhooks"),
	}
}

// DefaultDataDir is $XDG_DATA_HOME/parley, or ~/.local/share/parley.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "parley")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "parley")
	}
	return filepath.Join(os.TempDir(), "parley")
}

// loadState creates the data dir and loads or creates the node id and the
// token secret.
func (n *Node) loadState() error {
	if err := os.MkdirAll(n.paths.DataDir, 0o700); err != nil {
		return fmt.Errorf("node: data dir: %w", err)
	}
	id, err := n.loadNodeID()
	if err != nil {
		return err
	}
	n.id = id
	if n.secret, err = LoadTokenSecret(n.cfg); err != nil {
		return err
	}
	n.adminToken, err = LoadAdminToken(n.cfg)
	return err
}

// LoadAdminToken returns the admin API token: the configured one, or the
// one kept in the data dir (created on first use, mode 0600). The CLI reads
// the same file to talk to a local node.
func LoadAdminToken(cfg Config) (string, error) {
	if cfg.HTTP.AdminToken != "" {
		return cfg.HTTP.AdminToken, nil
	}
	p := cfg.Paths()
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("node: data dir: %w", err)
	}
	return readOrCreate(p.AdminFile, func() string { return core.NewSecret(24) })
}

// readOrCreate returns the trimmed contents of path, writing gen() there
// (mode 0600) first if the file does not exist.
func readOrCreate(path string, gen func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("node: %s is empty; delete it to regenerate", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("node: read %s: %w", path, err)
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node: write %s: %w", path, err)
	}
	return v, nil
}

// LoadTokenSecret returns the token secret cfg names, creating the data dir
// and the secret file if needed, as a node started with cfg would. A node
// of a cluster without its own --token-secret derives it from the cluster
// secret, so that every node accepts the tokens of every other (a client
// redirected to another node presents the same token there).
func LoadTokenSecret(cfg Config) ([]byte, error) {
	if cfg.TokenSecret != "" {
		return []byte(cfg.TokenSecret), nil
	}
	secret, err := cfg.ClusterSecret()
	if err != nil {
		return nil, err
	}
	if secret != "" {
		return deriveTokenSecret(secret), nil
	}
	p := cfg.Paths()
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	s, err := readOrCreate(p.SecretFile, func() string { return core.NewSecret(32) })
	return []byte(s), err
}
