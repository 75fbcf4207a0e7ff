package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/raftstore"
)

// The plugin set of a clustered node is the cluster's (raftstore's
// PutPlugin/DeletePlugin), kept in step on every node by pluginLoop, plus
// whatever its own plugin directory holds; a cluster plugin wins over a
// directory plugin of the same name. Without a cluster only the directory
// counts, as before.

// pluginSyncTimeout bounds one sync (compiling a new module takes seconds).
const pluginSyncTimeout = 2 * time.Minute

// kickPlugins asks pluginLoop to sync the plugin set.
func (n *Node) kickPlugins() {
	select {
	case n.pluginKick <- struct{}{}:
	default:
	}
}

// pluginLoop syncs the loaded plugins with the cluster's plugin set each
// time it changes, until ctx ends.
func (n *Node) pluginLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.pluginKick:
		}
		sctx, cancel := context.WithTimeout(ctx, pluginSyncTimeout)
		ch, err := n.syncPlugins(sctx)
		cancel()
		if len(ch.Loaded)+len(ch.Replaced)+len(ch.Unloaded) > 0 || err != nil {
			n.log.Info("plugins synced with the cluster", "loaded", ch.Loaded, "replaced", ch.Replaced,
				"unloaded", ch.Unloaded, "err", err)
		}
	}
}

// syncPlugins makes the loaded plugins match the plugin directory and the
// cluster's plugin set.
func (n *Node) syncPlugins(ctx context.Context) (plugins.Changes, error) {
	n.pluginMu.Lock()
	defer n.pluginMu.Unlock()
	var specs []plugins.Spec
	if n.pluginDir != "" {
		var err error
		if specs, err = plugins.ReadDir(n.pluginDir); err != nil {
			return plugins.Changes{}, err
		}
	}
	if n.store != nil {
		specs = overlaySpecs(specs, n.clusterSpecs())
	}
	for i := range specs {
		specs[i] = n.withStockConfig(specs[i])
	}
	return n.plugins.Sync(ctx, specs)
}

// clusterSpecs returns the cluster's plugin set as plugin specs.
func (n *Node) clusterSpecs() []plugins.Spec {
	var out []plugins.Spec
	for _, rec := range n.store.Plugins() {
		module, ok := n.store.Module(rec.SHA256)
		if !ok {
			n.log.Warn("cluster plugin without its module", "plugin", rec.Name, "sha256", rec.SHA256)
			continue
		}
		spec, err := specFromRecord(rec, module)
		if err != nil {
			n.log.Warn("cluster plugin record unusable", "plugin", rec.Name, "err", err)
			continue
		}
		out = append(out, spec)
	}
	return out
}

// overlaySpecs returns base with every spec of top added, replacing the
// one of the same name.
func overlaySpecs(base, top []plugins.Spec) []plugins.Spec {
	names := map[string]bool{}
	for _, s := range top {
		names[s.Name] = true
	}
	out := make([]plugins.Spec, 0, len(base)+len(top))
	for _, s := range base {
		if !names[s.Name] {
			out = append(out, s)
		}
	}
	return append(out, top...)
}

func specFromRecord(rec raftstore.PluginRecord, module []byte) (plugins.Spec, error) {
	s := plugins.Spec{
		Name: rec.Name, Version: rec.Version, Module: module, SHA256: rec.SHA256, Config: rec.Config,
		Order: rec.Order, WebhookAllow: rec.WebhookAllow,
	}
	for _, c := range rec.Capabilities {
		s.Capabilities = append(s.Capabilities, abi.Capability(c))
	}
	if len(rec.Limits) > 0 {
		if err := json.Unmarshal(rec.Limits, &s.Limits); err != nil {
			return s, fmt.Errorf("node: plugin %s limits: %w", rec.Name, err)
		}
	}
	return s, nil
}

func recordFromSpec(s plugins.Spec) (raftstore.PluginRecord, error) {
	rec := raftstore.PluginRecord{
		Name: s.Name, Version: s.Version, SHA256: s.SHA256, Config: s.Config,
		Order: s.Order, WebhookAllow: s.WebhookAllow,
	}
	for _, c := range s.Capabilities {
		rec.Capabilities = append(rec.Capabilities, string(c))
	}
	if s.Limits != (plugins.Limits{}) {
		b, err := json.Marshal(s.Limits)
		if err != nil {
			return rec, fmt.Errorf("node: plugin %s limits: %w", s.Name, err)
		}
		rec.Limits = b
	}
	return rec, nil
}

// clusterPluginLoad loads a plugin on this node (which checks that it
// compiles and initialises) and then puts it into the cluster's plugin
// set, from which every other node loads it.
func (n *Node) clusterPluginLoad(ctx context.Context, spec plugins.Spec) error {
	n.pluginMu.Lock()
	err := n.plugins.Upsert(ctx, n.withStockConfig(spec))
	n.pluginMu.Unlock()
	if err != nil {
		return core.Errorf(core.CodeBadRequest, "load %s: %v", spec.Name, err)
	}
	rec, err := recordFromSpec(spec)
	if err == nil {
		err = n.store.PutPlugin(ctx, rec, spec.Module)
	}
	if err != nil {
		n.kickPlugins() // back to the cluster's set
		return fmt.Errorf("node: plugin %s loaded here but not stored in the cluster: %w", spec.Name, err)
	}
	return nil
}

// clusterPluginUnload removes a plugin from the cluster's plugin set and
// from this node's plugin directory, then syncs this node.
func (n *Node) clusterPluginUnload(ctx context.Context, name string) error {
	inCluster := false
	for _, rec := range n.store.Plugins() {
		inCluster = inCluster || rec.Name == name
	}
	_, loaded := n.plugins.Stats(name)
	if !inCluster && !loaded {
		return core.Errorf(core.CodeNotFound, "no plugin %q loaded", name)
	}
	if inCluster {
		if err := n.store.DeletePlugin(ctx, name); err != nil {
			return fmt.Errorf("node: remove plugin %s from the cluster: %w", name, err)
		}
	}
	if dir := n.pluginDir; dir != "" {
		for _, p := range []string{filepath.Join(dir, name+".wasm"), filepath.Join(dir, name+".json")} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("node: plugin %s: remove %s: %w", name, p, err)
			}
		}
	}
	_, err := n.syncPlugins(ctx)
	return err
}
