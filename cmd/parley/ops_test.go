package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/sdk/client"
)

// logBuf collects a process's stderr; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	os.Stderr.Write(p)
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog polls until the log has a line containing every one of parts.
func (l *logBuf) waitLog(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			if containsAll(line, parts) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %s", parts, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *logBuf) has(parts ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		if containsAll(line, parts) {
			return true
		}
	}
	return false
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// waitExit waits for cmd to exit within timeout and returns its status.
func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("process did not exit within %s", timeout)
		return -1
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeLogLevelsAndReload runs the binary with per-subsystem levels
// from its config file, then changes them with SIGHUP: a broken file is
// refused and the node keeps serving with its old levels; a good one
// turns the http subsystem's debug lines on and names the settings that
// need a restart.
func TestServeLogLevelsAndReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := isolate(t)
	conf := filepath.Join(dir, "parley.toml")
	writeFile(t, conf, "log = \"*=warn\"\nmax-participants = 10\n")
	var logs logBuf
	cmd, base := startServeLog(t, dir, &logs, "--config", conf, "--http-addr", "127.0.0.1:0", "--webtransport-addr", "",
		"--media-port", "0", "--data-dir", filepath.Join(dir, "d"), "--plugin-dir", "none")
	const debugLine = "websocket accept failed" // http, debug: a plain GET of the signal URL

	getStatus(t, base+"/v1/signal")
	writeFile(t, conf, "log = \"raft=loud\"\n")
	cmd.Process.Signal(syscall.SIGHUP)
	line := logs.waitLog(t, 10*time.Second, "configuration invalid", "keeping the running one")
	if !strings.Contains(line, `level \"loud\"`) {
		t.Errorf("the error does not say what is wrong: %s", line)
	}
	if getStatus(t, base+"/healthz") != 200 {
		t.Fatal("not serving after a broken reload")
	}
	if logs.has(debugLine) || logs.has("level=INFO") {
		t.Fatalf("lines below warn logged with *=warn:\n%s", logs.String())
	}

	writeFile(t, conf, "log = \"http=debug,*=warn\"\nmax-participants = 7\n")
	cmd.Process.Signal(syscall.SIGHUP)
	logs.waitLog(t, 10*time.Second, "restart needed", "max-participants")
	getStatus(t, base+"/v1/signal")
	logs.waitLog(t, 10*time.Second, "level=DEBUG", "part=http", debugLine)
	if logs.has("level=INFO") {
		t.Fatalf("info lines of other subsystems logged with *=warn:\n%s", logs.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
}

// TestServeBadLogSpec: an invalid spec from any source stops the start
// with a clear error.
func TestServeBadLogSpec(t *testing.T) {
	dir := isolate(t)
	t.Setenv("PARLEY_LOG", "rafft=debug")
	_, errs, code := runCmd(t, "serve", "--data-dir", filepath.Join(dir, "d"))
	if code != 1 || !strings.Contains(errs, `unknown subsystem "rafft"`) || !strings.Contains(errs, "raft") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
		t.Error("data dir created by a start that failed its settings")
	}
	t.Setenv("PARLEY_LOG", "")
	_, errs, code = runCmd(t, "serve", "--log", "debug", "--log-format", "xml", "--drain-timeout", "-1s")
	if code != 1 || !strings.Contains(errs, "log-format") || !strings.Contains(errs, "drain-timeout") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m := effective(t, "--log", "plugins=info,debug")
	if m["log"] != "*=debug,plugins=info" {
		t.Fatalf("config shows log %v", m["log"])
	}
}

// TestServeDrainTellsClients: SIGTERM on a single node tells a joined
// client why its connection closes, ends its session and exits 0.
func TestServeDrainTellsClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := isolate(t)
	const secret = "drain-test-secret-0123456789"
	var logs logBuf
	cmd, base := startServeLog(t, dir, &logs, "--http-addr", "127.0.0.1:0", "--webtransport-addr", "", "--media-port", "0",
		"--data-dir", filepath.Join(dir, "d"), "--plugin-dir", "none", "--token-secret", secret, "--drain-timeout", "10s")
	tok, err := node.MintWithSecret([]byte(secret), core.Claims{Identity: "alice", Room: "r", Grants: core.AllGrants}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/signal", tok, client.WithLoopback(), client.WithReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("client not closed after SIGTERM")
	}
	if err := c.Err(); !errors.Is(err, client.ErrServerClosed) || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("client closed with %v, want the server's closing event (unavailable)", err)
	}
	if code := waitExit(t, cmd, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
	t.Logf("client told and process exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	logs.waitLog(t, time.Second, "node stopped")
}

// TestServeSecondSignalExits: a client that never reads holds the
// graceful stop up (its WebSocket close handshake waits); a second SIGTERM
// during the stop exits at once with status 143 (128+SIGTERM).
func TestServeSecondSignalExits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cmd, logs := serveWithIdleClient(t, "60s")
	cmd.Process.Signal(syscall.SIGTERM)
	logs.waitLog(t, 10*time.Second, "stopping:")
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd, 3*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit status %d after a second SIGTERM, want %d", code, 128+int(syscall.SIGTERM))
	}
	t.Logf("exited %s after the second SIGTERM", time.Since(start).Round(time.Millisecond))
	logs.waitLog(t, time.Second, "second stop signal")
}

// TestServeInfo: serve --info prints the resolved settings, ports and
// paths without serving or creating anything.
func TestServeInfo(t *testing.T) {
	dir := isolate(t)
	data := filepath.Join(dir, "d")
	plugs := filepath.Join(dir, "plugins")
	os.MkdirAll(plugs, 0o700)
	writeFile(t, filepath.Join(plugs, "gate.wasm"), "")
	t.Setenv("PARLEY_LOG", "raft=debug")
	out, errs, code := runCmd(t, "serve", "--info", "--data-dir", data, "--http-addr", "0.0.0.0:7443", "--media-port", "0",
		"--plugin-dir", plugs, "--public-ip", "203.0.113.7", "--drain-timeout", "45s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"not serving", "http://0.0.0.0:7443", "ws://0.0.0.0:7443/v1/signal", "udp, a free port picked at start, announced as 203.0.113.7",
		"webtransport:", "127.0.0.1:7071", "data dir:", data, filepath.Join(data, "admin.token") + " (created at first start)",
		plugs + " (gate)", "*=info,raft=debug", "45s", "log=env", "http-addr=flag", "cluster:", "none (a single node)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --info lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("serve --info created the data dir")
	}
	if strings.Contains(out, "info=flag") {
		t.Error("--info reported as a setting")
	}
}

// TestInfoCommand: parley info asks a running node (the real binary) for
// its description, with the admin token from the data dir.
func TestInfoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := isolate(t)
	data := filepath.Join(dir, "d")
	_, base := startServe(t, dir, "--http-addr", "127.0.0.1:0", "--webtransport-addr", "", "--media-port", "0",
		"--data-dir", data, "--plugin-dir", "none")
	addr := strings.TrimPrefix(base, "http://")
	id, err := os.ReadFile(filepath.Join(data, "node.id"))
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCmd(t, "info", "--http-addr", addr, "--data-dir", data)
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"node " + strings.TrimSpace(string(id)), "uptime:", "http:", addr, "ws://" + addr + "/v1/signal", "media:", "udp/",
		"cluster:", "none (a single node)", "data dir:", data, "plugins:", "0 loaded",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	out, errs, code = runCmd(t, "info", "--http-addr", addr, "--data-dir", data, "--json")
	if code != 0 || !strings.Contains(out, `"node_id"`) || !strings.Contains(out, `"data_dir"`) {
		t.Fatalf("info --json: exit %d: %s\n%s", code, errs, out)
	}
	// A wrong admin token still prints what /v1/info tells, then fails.
	out, errs, code = runCmd(t, "info", "--http-addr", addr, "--admin-token", "wrong")
	if code != 1 || !strings.Contains(out, "uptime:") || !strings.Contains(errs, "401") {
		t.Fatalf("info with a wrong token: exit %d: %s\n%s", code, errs, out)
	}
	// No node there: a clear error.
	_, errs, code = runCmd(t, "info", "--http-addr", "127.0.0.1:1", "--data-dir", data)
	if code != 1 || !strings.Contains(errs, "is the node running at") {
		t.Fatalf("info without a node: exit %d: %s", code, errs)
	}
}

// TestServeStopBounded: a client that never reads cannot hold the stop
// past --drain-timeout: the process exits (status 1, the stop was
// incomplete) shortly after the bound.
func TestServeStopBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cmd, logs := serveWithIdleClient(t, "1s")
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	code := waitExit(t, cmd, 1*time.Second+stopGrace+2*time.Second)
	took := time.Since(start)
	if code != 1 {
		t.Fatalf("exit status %d after an overrun stop, want 1", code)
	}
	t.Logf("stop with a stuck client took %s (bound 1s)", took.Round(time.Millisecond))
	logs.waitLog(t, time.Second, "node stopped", "shutdown incomplete")
}

// TestInfoClusterRole: parley info on a node of a cluster reports its role
// and leader.
func TestInfoClusterRole(t *testing.T) {
	data := filepath.Join(isolate(t), "d")
	n := soloCluster(t, data)
	out, errs, code := runCmd(t, "info", "--http-addr", strings.TrimPrefix(n.URL(), "http://"), "--data-dir", data)
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "cluster:") || !strings.Contains(out, "leader, leader solo, term ") || !strings.Contains(out, "1 nodes") ||
		!strings.Contains(out, "node solo") || !strings.Contains(out, "and the cluster's plugin set") {
		t.Fatalf("info on a cluster node:\n%s", out)
	}
}

// serveWithIdleClient starts `parley serve` with the given --drain-timeout
// and connects a WebSocket client that never reads, so a graceful stop
// waits on its close handshake. The client closes at the test's end.
func serveWithIdleClient(t *testing.T, drainTimeout string) (*exec.Cmd, *logBuf) {
	t.Helper()
	dir := isolate(t)
	logs := &logBuf{}
	cmd, base := startServeLog(t, dir, logs, "--http-addr", "127.0.0.1:0", "--webtransport-addr", "", "--media-port", "0",
		"--data-dir", filepath.Join(dir, "d"), "--plugin-dir", "none", "--drain-timeout", drainTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return cmd, logs
}
