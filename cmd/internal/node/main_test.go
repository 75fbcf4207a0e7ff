package node_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// wasmDir holds the plugins built for this test run; wazeroCache is shared
// across runs so a plugin compiles once (wazero keys it by digest).
var (
	wasmDir     string
	wazeroCache string
	buildOnce   sync.Once
	buildErr    error
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "parley-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wasmDir = filepath.Join(tmp, "wasm")
	wazeroCache = filepath.Join(tmp, "wazero")
	if base, err := os.UserCacheDir(); err == nil {
		wazeroCache = filepath.Join(base, "parley", "test-wazero")
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// pluginWasm builds (once per run) the stock plugins and the host's test
// plugin and returns the path of name.wasm.
func pluginWasm(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		pkgs := map[string]string{
			"jwtauth": "./plugins/stock/jwtauth", "roompolicy": "./plugins/stock/roompolicy",
			"presencewebhook": "./plugins/stock/presencewebhook", "testplug": "./plugins/testdata/testplug",
		}
		for n, pkg := range pkgs {
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(wasmDir, n+".wasm"), pkg)
			cmd.Dir = filepath.Join("..", "..", "..")
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", n, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(wasmDir, name+".wasm")
}

// pluginDir makes a plugin directory with the named plugins and manifests
// (name -> manifest JSON, "" for none).
func pluginDir(t testing.TB, plugins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, manifest := range plugins {
		b, err := os.ReadFile(pluginWasm(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if manifest != "" {
			if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}
