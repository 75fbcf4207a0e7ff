package plugins

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadDir(t *testing.T) {
	dir := t.TempDir()
	m, _ := newManager(t)
	ctx := context.Background()
	write(t, filepath.Join(dir, "gate.wasm"), watPlugin(t, "policy"))
	write(t, filepath.Join(dir, "gate.json"), []byte(`{"version":"1","capabilities":["log"],"order":5,"limits":{"call_timeout":"1500ms"}}`))
	write(t, filepath.Join(dir, "tp.wasm"), goPlugin(t, "testdata/testplug"))
	write(t, filepath.Join(dir, "tp.json"), []byte(`{"capabilities":["config","kv","log","webhook"],"config":{"version":"x"}}`))
	ch, err := m.ReloadDir(ctx, dir)
	if err != nil || !slices.Equal(ch.Loaded, []string{"gate", "tp"}) {
		t.Fatalf("first reload: %+v %v", ch, err)
	}
	list := m.List()
	if len(list) != 2 || list[0].Name != "tp" || list[1].Name != "gate" || list[1].Limits.CallTimeout.Milliseconds() != 1500 ||
		len(list[0].Version) != 12 {
		t.Fatalf("list %+v", list)
	}
	// Unchanged files change nothing; a new manifest replaces; a removed file unloads.
	if ch, err = m.ReloadDir(ctx, dir); err != nil || len(ch.Unchanged) != 2 {
		t.Fatalf("second reload: %+v %v", ch, err)
	}
	write(t, filepath.Join(dir, "gate.json"), []byte(`{"version":"2","capabilities":["log"]}`))
	if err := os.Remove(filepath.Join(dir, "tp.wasm")); err != nil {
		t.Fatal(err)
	}
	ch, err = m.ReloadDir(ctx, dir)
	if err != nil || !slices.Equal(ch.Replaced, []string{"gate"}) || !slices.Equal(ch.Unloaded, []string{"tp"}) {
		t.Fatalf("third reload: %+v %v", ch, err)
	}
	// A broken manifest is reported and leaves the plugin loaded.
	write(t, filepath.Join(dir, "gate.json"), []byte(`{"version":`))
	if _, err := m.ReloadDir(ctx, dir); err == nil {
		t.Fatal("broken manifest accepted")
	}
	if d, err := m.Decide(ctx, join("lobby")); err != nil || !d.Allow {
		t.Fatalf("after a broken manifest: %+v %v", d, err)
	}
	if l := m.List(); len(l) != 1 || l[0].Version != "2" {
		t.Fatalf("list %+v", l)
	}
}

func TestReadDirStockDefaults(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "roompolicy.wasm"), watPlugin(t, "policy"))
	specs, err := ReadDir(dir)
	if err != nil || len(specs) != 1 || specs[0].Order != 20 || !slices.Equal(specs[0].Capabilities, []abi.Capability{abi.CapConfig}) {
		t.Fatalf("%+v %v", specs, err)
	}
}

func TestTestRun(t *testing.T) {
	ctx := context.Background()
	res, err := TestRun(ctx, goPlugin(t, "testdata/testplug"), abi.HookJoin, joinInput(t, "r"),
		TestOptions{Config: []byte(`{"version":"t1"}`), Runs: 20, CacheDir: cacheDir})
	if err != nil || res.Decision == nil || !res.Decision.Allow || *res.Decision.Metadata != "t1" ||
		res.Latency <= 0 || res.MemoryBytes <= 0 || res.Stats.Calls != 20 {
		t.Fatalf("%+v %v", res, err)
	}
	t.Logf("load %v, first call %v, median %v, memory %d KiB", res.LoadTime, res.FirstCall, res.Latency, res.MemoryBytes>>10)
	in := []byte(`{"kind":"joined","room":"r"}`)
	res, err = TestRun(ctx, goPlugin(t, "testdata/testplug"), abi.HookPresence, in,
		TestOptions{Config: []byte(`{"webhook_url":"https://x.test/h"}`), CacheDir: cacheDir})
	if err != nil || len(res.Webhooks) != 1 {
		t.Fatalf("presence: %+v %v", res, err)
	}
	if _, err := TestRun(ctx, watPlugin(t, "loop"), abi.HookJoin, in, TestOptions{Limits: Limits{CallTimeout: 20e6}}); err == nil {
		t.Fatal("the loop returned")
	}
	_ = core.CodeForbidden
}
