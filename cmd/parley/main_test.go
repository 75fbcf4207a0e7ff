package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/core/devtoken"
)

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// isolate points every default path into a temp dir and clears PARLEY_*.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	return dir
}

func effective(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, errs, code := runCmd(t, append([]string{"config"}, args...)...)
	if code != 0 {
		t.Fatalf("config %v: exit %d: %s", args, code, errs)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("config output not JSON: %v\n%s", err, out)
	}
	return m
}

func TestSettingsPrecedence(t *testing.T) {
	dir := isolate(t)
	file := filepath.Join(dir, "p.toml")
	os.WriteFile(file, []byte("http-addr = \"127.0.0.1:9001\"\nmedia-port = 9002\nmax-participants = 3\npublic-ip = [\"192.0.2.1\", \"192.0.2.2\"]\n"), 0o600)
	t.Setenv("PARLEY_MEDIA_PORT", "9003")
	t.Setenv("PARLEY_MAX_PARTICIPANTS", "4")
	m := effective(t, "--config", file, "--max-participants", "5")
	http := m["http"].(map[string]any)
	media := m["media"].(map[string]any)
	rm := m["room"].(map[string]any)
	if http["http_addr"] != "127.0.0.1:9001" {
		t.Errorf("file value lost: %v", http["http_addr"])
	}
	if media["media_port"] != float64(9003) {
		t.Errorf("env should beat file: %v", media["media_port"])
	}
	if rm["max_participants"] != float64(5) {
		t.Errorf("flag should beat env: %v", rm["max_participants"])
	}
	if ips := media["public_ips"].([]any); len(ips) != 2 || ips[1] != "192.0.2.2" {
		t.Errorf("list from file: %v", ips)
	}
	src := m["set_by"].(map[string]any)
	if src["http-addr"] != "file" || src["media-port"] != "env" || src["max-participants"] != "flag" {
		t.Errorf("sources: %v", src)
	}
	paths := m["paths"].(map[string]any)
	if paths["data_dir"] != filepath.Join(dir, "data", "parley") {
		t.Errorf("data dir %v", paths["data_dir"])
	}
}

func TestSettingsRejectUnknown(t *testing.T) {
	dir := isolate(t)
	file := filepath.Join(dir, "p.toml")
	os.WriteFile(file, []byte("media-prot = 1\n"), 0o600)
	if _, errs, code := runCmd(t, "config", "--config", file); code == 0 || !strings.Contains(errs, `unknown key "media-prot"`) {
		t.Fatalf("unknown file key accepted: %d %s", code, errs)
	}
	t.Setenv("PARLEY_MEDIA_PROT", "1")
	if _, errs, code := runCmd(t, "config"); code == 0 || !strings.Contains(errs, "PARLEY_MEDIA_PROT") {
		t.Fatalf("unknown env accepted: %d %s", code, errs)
	}
}

func TestSettingsRejectInvalid(t *testing.T) {
	isolate(t)
	if _, errs, code := runCmd(t, "config", "--media-port", "70000"); code == 0 || !strings.Contains(errs, "port") {
		t.Fatalf("bad port accepted: %d %s", code, errs)
	}
	if _, errs, code := runCmd(t, "config", "--allowed-origins", "*"); code == 0 || !strings.Contains(errs, "origin") {
		t.Fatalf("wildcard origin accepted: %d %s", code, errs)
	}
}

func TestTokenVerifiesWithNodeSecret(t *testing.T) {
	dir := isolate(t)
	out, errs, code := runCmd(t, "token", "--room", "demo", "--identity", "alice", "--no-publish")
	if code != 0 {
		t.Fatalf("token: %d %s", code, errs)
	}
	secret, err := os.ReadFile(filepath.Join(dir, "data", "parley", "token.secret"))
	if err != nil {
		t.Fatal(err)
	}
	v := &devtoken.Verifier{Secret: bytes.TrimSpace(secret)}
	c, err := v.Authenticate(context.Background(), strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "alice" || c.Room != "demo" || c.Grants.CanPublish || !c.Grants.CanSubscribe {
		t.Fatalf("claims %+v", c)
	}
	if _, _, code := runCmd(t, "token", "--room", "demo"); code == 0 {
		t.Fatal("token without identity succeeded")
	}
}

func TestHelpAndVersion(t *testing.T) {
	isolate(t)
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"config", "--help"}, {"token", "--help"}, {"version", "--help"}} {
		out, errs, code := runCmd(t, args...)
		if code != 0 || !strings.Contains(out+errs, "Usage") {
			t.Errorf("%v: exit %d, output %q", args, code, out+errs)
		}
	}
	out, _, code := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "parley ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if _, _, code := runCmd(t, "frobnicate"); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}
