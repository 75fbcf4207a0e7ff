package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildWasm builds a plugin package to dir/name.wasm.
func buildWasm(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, pkg)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestPluginsCLIAgainstProcess runs a real node process and drives its
// plugins through the CLI: load over the admin API, list, SIGHUP reload
// after the directory changed, unload; and `plugin test` locally.
func TestPluginsCLIAgainstProcess(t *testing.T) {
	dir := isolate(t)
	wasm := buildWasm(t, dir, "roompolicy", "./plugins/stock/roompolicy")
	data, pdir := filepath.Join(dir, "d"), filepath.Join(dir, "plugins")
	os.Mkdir(pdir, 0o755)
	cmd, base := startServe(t, dir, "--http-addr", "127.0.0.1:0", "--media-port", "0", "--webtransport-addr", "",
		"--data-dir", data, "--plugin-dir", pdir, "--plugin-call-timeout", "2s")
	addr := strings.TrimPrefix(base, "http://")
	cli := func(args ...string) string {
		t.Helper()
		out, errs, code := runCmd(t, append(args, "--http-addr", addr, "--data-dir", data)...)
		if code != 0 {
			t.Fatalf("parley %v: exit %d: %s", args, code, errs)
		}
		return out
	}
	manifest := filepath.Join(dir, "m.json")
	os.WriteFile(manifest, []byte(`{"version":"cli-1","config":{"max_participants":3}}`), 0o644)
	cli("plugins", "load", wasm, "--manifest", manifest)
	if out := cli("plugins", "list"); !strings.Contains(out, `"Name": "roompolicy"`) || !strings.Contains(out, "cli-1") {
		t.Fatalf("list after load: %s", out)
	}
	if _, err := os.Stat(filepath.Join(pdir, "roompolicy.wasm")); err != nil {
		t.Fatalf("loaded plugin not saved in the plugin dir: %v", err)
	}
	// Changing the directory and sending SIGHUP reloads it.
	os.WriteFile(filepath.Join(pdir, "roompolicy.json"), []byte(`{"version":"hup-2","config":{"max_participants":4}}`), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(cli("plugins", "list"), "hup-2") {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the plugin directory")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cli("plugins", "unload", "roompolicy")
	if out := cli("plugins", "list"); strings.Contains(out, "roompolicy") {
		t.Fatalf("list after unload: %s", out)
	}
	if _, _, code := runCmd(t, "plugins", "list", "--http-addr", addr, "--data-dir", data, "--admin-token", "wrong"); code == 0 {
		t.Fatal("admin API accepted a wrong token")
	}

	req := filepath.Join(dir, "req.json")
	os.WriteFile(req, []byte(`{"room":"r","participant_id":"PA_1","participants":5,"claims":{"identity":"a","room":"r"}}`), 0o644)
	cfg := filepath.Join(dir, "cfg.json")
	os.WriteFile(cfg, []byte(`{"max_participants":5}`), 0o644)
	out, errs, code := runCmd(t, "plugin", "test", wasm, "--hook", "join", "--input", req, "--config", cfg)
	if code != 0 {
		t.Fatalf("plugin test: %d %s %s", code, out, errs)
	}
	var res struct {
		Decision struct {
			Allow bool   `json:"allow"`
			Code  string `json:"code"`
		} `json:"decision"`
		Latency     string `json:"latency"`
		MemoryBytes int64  `json:"memory_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("plugin test output: %v\n%s", err, out)
	}
	if res.Decision.Allow || res.Decision.Code != "room_full" || res.Latency == "" || res.MemoryBytes == 0 {
		t.Fatalf("plugin test result: %s", out)
	}
}
