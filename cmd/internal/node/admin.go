package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/plugins"
)

// pluginAdmin implements edge.PluginAdmin over the node's plugin host. A
// plugin loaded through the API is also written into the plugin directory
// (when there is one), so it survives a restart and a SIGHUP reload. On a
// clustered node it goes into the cluster's plugin set instead, which
// every node loads (cluster_plugins.go).
type pluginAdmin struct{ n *Node }

// PluginList implements edge.PluginAdmin.
func (a pluginAdmin) PluginList() any {
	return map[string]any{"dir": a.n.pluginDir, "data_dir": a.n.paths.DataDir, "cluster": a.n.store != nil, "plugins": a.n.plugins.List()}
}

// PluginLoad implements edge.PluginAdmin.
func (a pluginAdmin) PluginLoad(ctx context.Context, name string, module, manifest []byte) (any, error) {
	man, err := plugins.ParseManifest(manifest)
	if err != nil {
		return nil, core.Errorf(core.CodeBadRequest, "%v", err)
	}
	if man.Name != "" && man.Name != name {
		return nil, core.Errorf(core.CodeBadRequest, "manifest names %q, URL names %q", man.Name, name)
	}
	spec, err := plugins.SpecFromManifest(name, module, man)
	if err != nil {
		return nil, core.Errorf(core.CodeBadRequest, "%v", err)
	}
	if a.n.store != nil {
		if err := a.n.clusterPluginLoad(ctx, spec); err != nil {
			return nil, err
		}
		a.n.log.Info("plugin put into the cluster's plugin set through the admin API", "plugin", name, "version", spec.Version, "sha256", spec.SHA256)
		return map[string]any{"name": name, "version": spec.Version, "sha256": spec.SHA256, "cluster": true}, nil
	}
	if err := a.n.plugins.Upsert(ctx, a.n.withStockConfig(spec)); err != nil {
		return nil, core.Errorf(core.CodeBadRequest, "load %s: %v", name, err)
	}
	if dir := a.n.pluginDir; dir != "" {
		if err := writeAtomic(filepath.Join(dir, name+".wasm"), module, 0o644); err != nil {
			return nil, err
		}
		mpath := filepath.Join(dir, name+".json")
		if len(manifest) > 0 {
			err = writeAtomic(mpath, manifest, 0o644)
		} else if rerr := os.Remove(mpath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
		if err != nil {
			return nil, fmt.Errorf("node: plugin %s loaded but not saved: %w", name, err)
		}
	}
	a.n.log.Info("plugin loaded through the admin API", "plugin", name, "version", spec.Version, "sha256", spec.SHA256)
	return map[string]string{"name": name, "version": spec.Version, "sha256": spec.SHA256}, nil
}

// PluginUnload implements edge.PluginAdmin.
func (a pluginAdmin) PluginUnload(ctx context.Context, name string) error {
	if a.n.store != nil {
		if err := a.n.clusterPluginUnload(ctx, name); err != nil {
			return err
		}
		a.n.log.Info("plugin removed from the cluster's plugin set through the admin API", "plugin", name)
		return nil
	}
	if err := a.n.plugins.Unload(ctx, name); err != nil {
		if errors.Is(err, plugins.ErrNotFound) {
			return core.Errorf(core.CodeNotFound, "no plugin %q loaded", name)
		}
		return err
	}
	if dir := a.n.pluginDir; dir != "" {
		for _, p := range []string{filepath.Join(dir, name+".wasm"), filepath.Join(dir, name+".json")} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("node: plugin %s unloaded but its file remains: %w", name, err)
			}
		}
	}
	a.n.log.Info("plugin unloaded through the admin API", "plugin", name)
	return nil
}

// PluginReload implements edge.PluginAdmin.
func (a pluginAdmin) PluginReload(ctx context.Context) (any, error) {
	ch, err := a.n.ReloadPlugins(ctx)
	if err != nil {
		return nil, core.Errorf(core.CodeBadRequest, "%v", err)
	}
	return ch, nil
}

// writeAtomic replaces path with b, mode perm, through a synced temporary
// file in the same directory: a crash leaves the old file or the new one.
func writeAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err = tmp.Chmod(perm); err == nil {
		if _, err = tmp.Write(b); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	return nil
}
