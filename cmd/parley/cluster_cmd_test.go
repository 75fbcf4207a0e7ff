package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/raftstore"
)

// cluster init stores the secret in the data dir, where serve, token and
// the cluster tools find it; it refuses to replace a different one.
func TestClusterInit(t *testing.T) {
	dir := isolate(t)
	d1, d2 := filepath.Join(dir, "n1"), filepath.Join(dir, "n2")
	out, errs, code := runCmd(t, "cluster", "init", "--data-dir", d1)
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(filepath.Join(d1, "cluster.secret"))
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(b))
	if !strings.Contains(out, secret) {
		t.Fatalf("init did not print the secret:\n%s", out)
	}
	if st, _ := os.Stat(filepath.Join(d1, "cluster.secret")); st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v", st.Mode().Perm())
	}
	if m := effective(t, "--data-dir", d1); m["clustered"] != true {
		t.Fatalf("config does not see the cluster: %v", m["clustered"])
	}
	if _, _, code := runCmd(t, "cluster", "init", "--data-dir", d2, "--cluster-secret", secret); code != 0 {
		t.Fatal("init with a given secret failed")
	}
	if _, errs, code := runCmd(t, "cluster", "init", "--data-dir", d1); code == 0 || !strings.Contains(errs, "already holds") {
		t.Fatalf("second init replaced the secret: exit %d %s", code, errs)
	}
	// Both nodes derive the same token secret from the cluster secret, so a
	// token minted for one is valid on the other.
	tok, errs, code := runCmd(t, "token", "--data-dir", d1, "--room", "r", "--identity", "i")
	if code != 0 {
		t.Fatalf("token: %s", errs)
	}
	sec, err := node.LoadTokenSecret(node.Config{DataDir: d2})
	if err != nil {
		t.Fatal(err)
	}
	v := devtoken.Verifier{Secret: sec}
	if _, err := v.Authenticate(context.Background(), strings.TrimSpace(tok)); err != nil {
		t.Fatalf("token of n1 on n2: %v", err)
	}
}

// cluster status and remove talk to a running member over its raft port.
func TestClusterStatusAndRemove(t *testing.T) {
	dir := isolate(t)
	data := filepath.Join(dir, "n1")
	if _, errs, code := runCmd(t, "cluster", "init", "--data-dir", data); code != 0 {
		t.Fatal(errs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.PluginDir = data, "none"
	cfg.HTTP.HTTPAddr, cfg.HTTP.WebTransportAddr, cfg.Media.MediaPort = "127.0.0.1:0", "", 0
	cfg.Cluster.NodeID, cfg.Cluster.Listener = "solo", ln
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitClusterReady(ctx); err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	out, errs, code := runCmd(t, "cluster", "status", "--data-dir", data, "--raft-addr", addr)
	if code != 0 || !strings.Contains(out, "Leader") || !strings.Contains(out, "solo") || !strings.Contains(out, n.SignalURL()) {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}
	if _, errs, code := runCmd(t, "cluster", "remove", "ghost", "--data-dir", data, "--raft-addr", addr); code != 0 {
		t.Fatalf("remove of a non-member: %s", errs)
	}
	wrong, _ := raftstore.GenerateSecret()
	if out, _, code := runCmd(t, "cluster", "status", "--raft-addr", addr, "--cluster-secret", wrong, "--timeout", "2s"); code == 0 {
		t.Fatalf("status with another cluster's secret succeeded:\n%s", out)
	}
}

func TestClusterUsage(t *testing.T) {
	isolate(t)
	if _, errs, code := runCmd(t, "cluster"); code == 0 || !strings.Contains(errs, "recover") {
		t.Fatalf("cluster without a subcommand: exit %d %s", code, errs)
	}
	if _, _, code := runCmd(t, "cluster", "bogus"); code == 0 {
		t.Fatal("unknown subcommand accepted")
	}
}

// cluster recover rewrites a stopped node's voters; it starts again as the
// leader of the recovered configuration.
func TestClusterRecover(t *testing.T) {
	dir := isolate(t)
	data := filepath.Join(dir, "n1")
	if _, errs, code := runCmd(t, "cluster", "init", "--data-dir", data); code != 0 {
		t.Fatal(errs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	start := func(ln net.Listener) *node.Node {
		cfg := node.DefaultConfig()
		cfg.DataDir, cfg.PluginDir = data, "none"
		cfg.HTTP.HTTPAddr, cfg.HTTP.WebTransportAddr, cfg.Media.MediaPort = "127.0.0.1:0", "", 0
		cfg.Cluster.NodeID, cfg.Cluster.Listener = "solo", ln
		n, err := node.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.WaitClusterReady(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := start(ln)
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCmd(t, "cluster", "recover", "--data-dir", data, "--raft-addr", addr, "--voters", "solo="+addr)
	if code != 0 || !strings.Contains(out, "rewritten") {
		t.Fatalf("recover: exit %d\n%s%s", code, out, errs)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n = start(ln)
	defer n.Shutdown(context.Background())
	if st := n.Store().Status(); st.State != "Leader" {
		t.Fatalf("after recovery: %+v", st)
	}
}
