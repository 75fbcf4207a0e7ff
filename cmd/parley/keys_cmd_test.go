package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/edge/api"
)

// TestKeysCommand manages API keys and signing keys of a real `parley
// serve` process with the real binary, and uses a created key.
func TestKeysCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := isolate(t)
	data := filepath.Join(dir, "d")
	_, base := startServe(t, dir, "--http-addr", "127.0.0.1:0", "--webtransport-addr", "", "--media-port", "0", "--data-dir", data, "--plugin-dir", "none")
	addr := strings.TrimPrefix(base, "http://")
	keys := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, "parley"), append(append([]string{"keys"}, args...), "--data-dir", data, "--http-addr", addr)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("parley keys %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := keys("create", "--name", "site backend")
	m := regexp.MustCompile(`(?m)^id:\s+(AK\S+)\n.*\nsecret:\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create printed %q", out)
	}
	id, secret := m[1], m[2]
	signed := func() int {
		req, _ := http.NewRequest("GET", base+"/v1/rooms", nil)
		api.SignRequest(req, nil, id, secret, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := signed(); st != http.StatusOK {
		t.Fatalf("request with the new key: %d", st)
	}
	if out := keys("list"); !strings.Contains(out, id) || !strings.Contains(out, "site backend") || strings.Contains(out, secret) || !strings.Contains(out, "1 API keys") {
		t.Fatalf("list printed %q", out)
	}
	fi, err := os.Stat(filepath.Join(data, "api-keys.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if out := keys("rotate"); !strings.Contains(out, "new active webhook signing key") {
		t.Fatalf("rotate printed %q", out)
	}
	if out := keys("retire"); !strings.Contains(out, "retired 1 ") {
		t.Fatalf("retire printed %q", out)
	}
	if out := keys("revoke", id); !strings.Contains(out, "revoked "+id) {
		t.Fatalf("revoke printed %q", out)
	}
	if st := signed(); st != http.StatusUnauthorized {
		t.Fatalf("request with the revoked key: %d", st)
	}
	if out := keys("list"); !strings.Contains(out, "0 API keys") {
		t.Fatalf("list after revoke printed %q", out)
	}
	cmd := exec.Command(filepath.Join(dir, "parley"), "keys", "revoke", id, "--data-dir", data, "--http-addr", addr)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not_found") {
		t.Fatalf("revoking again: %v %s", err, out)
	}
}

func TestKeysCommandUsage(t *testing.T) {
	isolate(t)
	if _, errs, code := runCmd(t, "keys"); code != 1 || !strings.Contains(errs, "Usage: parley keys") {
		t.Fatalf("no subcommand: %d %s", code, errs)
	}
	if _, errs, code := runCmd(t, "keys", "revoke"); code != 1 || !strings.Contains(errs, "one key id") {
		t.Fatalf("revoke without id: %d %s", code, errs)
	}
	if _, errs, code := runCmd(t, "keys", "list", "extra"); code != 1 || !strings.Contains(errs, "no arguments") {
		t.Fatalf("list with an argument: %d %s", code, errs)
	}
}
