package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/plugins"
)

// DefaultPluginDir is where a node looks for plugins when none is
// configured: "plugins" beside the executable (make build puts the stock
// plugins in bin/plugins next to bin/parley), if that directory exists.
func DefaultPluginDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	dir := filepath.Join(filepath.Dir(exe), "plugins")
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir
	}
	return ""
}

// openPlugins starts the plugin host and loads the plugin directory.
func (n *Node) openPlugins() error {
	dir := n.cfg.PluginDir
	if dir == "" {
		dir = DefaultPluginDir()
	}
	if dir == "none" {
		dir = ""
	}
	n.pluginDir = dir
	pc := n.cfg.Plugins
	if pc.CacheDir == "" {
		pc = pc.WithCacheDir(n.paths.PluginCache)
	}
	pm, err := plugins.NewManager(pc, n.log.With("part", "plugins"))
	if err != nil {
		return fmt.Errorf("node: plugins: %w", err)
	}
	n.plugins = pm
	if dir == "" {
		n.log.Info("no plugin directory: built-in token verifier, allow-all policy")
		return nil
	}
	ch, err := n.ReloadPlugins(context.Background())
	if err != nil {
		return fmt.Errorf("node: load plugins from %s: %w", dir, err)
	}
	n.log.Info("plugins loaded", "dir", dir, "plugins", ch.Loaded)
	return nil
}

// PluginDir returns the directory plugins are loaded from, or "".
func (n *Node) PluginDir() string { return n.pluginDir }

// Plugins returns the node's plugin host.
func (n *Node) Plugins() *plugins.Manager { return n.plugins }

// ReloadPlugins makes the loaded plugins match the plugin directory (and,
// on a clustered node, the cluster's plugin set): what SIGHUP and `parley
// plugins reload` do. A file that cannot be read leaves every plugin as it
// is.
func (n *Node) ReloadPlugins(ctx context.Context) (plugins.Changes, error) {
	if n.pluginDir == "" && n.store == nil {
		return plugins.Changes{}, errors.New("node: no plugin directory configured")
	}
	return n.syncPlugins(ctx)
}

// withStockConfig gives the stock jwtauth plugin, when its manifest sets
// no configuration, the node's token secret, so tokens from `parley token`
// keep working when it replaces the built-in verifier.
func (n *Node) withStockConfig(s plugins.Spec) plugins.Spec {
	if s.Name != "jwtauth" || len(s.Config) > 0 {
		return s
	}
	cfg, _ := json.Marshal(map[string]any{
		"hs256_secret": string(n.secret), "issuer": devtoken.DefaultIssuer, "audience": devtoken.DefaultAudience,
	})
	s.Config = cfg
	return s
}

// nodeAuth authenticates with the auth plugins when any is loaded, and
// with the built-in development verifier otherwise, or when every auth
// plugin skipped the token (a skip means "not one of mine"; a plugin that
// must be the only way in denies instead).
type nodeAuth struct {
	pm  *plugins.Manager
	dev core.Authenticator
}

// Authenticate implements core.Authenticator.
func (a nodeAuth) Authenticate(ctx context.Context, token string) (core.Claims, error) {
	if a.pm.Serves(abi.HookAuth) {
		c, err := a.pm.Authenticate(ctx, token)
		if !errors.Is(err, plugins.ErrAllSkipped) {
			return c, err
		}
	}
	return a.dev.Authenticate(ctx, token)
}
