package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeProcess builds the real binary, starts it on free ports, checks
// its endpoints and stops it with SIGTERM.
func TestServeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := isolate(t)
	cmd, base := startServe(t, dir, "--http-addr", "127.0.0.1:0", "--webtransport-addr", "127.0.0.1:0",
		"--media-port", "0", "--data-dir", filepath.Join(dir, "d"))
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Version   string   `json:"version"`
		NodeID    string   `json:"node_id"`
		Features  []string `json:"features"`
		MediaPort int      `json:"media_port"`
		SignalURL string   `json:"signal_url"`
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Version == "" || !strings.HasPrefix(info.NodeID, "NO_") || len(info.Features) == 0 || info.MediaPort == 0 || !strings.HasSuffix(info.SignalURL, "/v1/signal") {
		t.Fatalf("info: %+v", info)
	}
	if _, err := os.Stat(filepath.Join(dir, "d", "node.id")); err != nil {
		t.Fatalf("node id not persisted: %v", err)
	}
	if resp, err := http.Get(base + "/v1/dev/token?room=a&identity=b"); err == nil && resp.StatusCode == 200 {
		t.Fatal("dev token endpoint served without --dev")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop within 20s of SIGTERM")
	}
}

// startServe builds the binary into dir, starts `parley serve args...`,
// and returns the process and the base URL it printed ("open: URL"). The
// process is killed when the test ends.
func startServe(t *testing.T, dir string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	return startServeLog(t, dir, os.Stderr, args...)
}

// startServeLog is startServe with the process's log (stderr) going to
// stderr.
func startServeLog(t *testing.T, dir string, stderr io.Writer, args ...string) (*exec.Cmd, string) {
	t.Helper()
	bin := filepath.Join(dir, "parley")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "open:" {
			go func() { // keep draining so the process never blocks on stdout
				for sc.Scan() {
				}
			}()
			return cmd, f[1]
		}
	}
	t.Fatal("serve did not print the URL to open")
	return nil, ""
}
