package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger discards unless RAFTSTORE_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("RAFTSTORE_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testNode struct {
	id   string
	addr string
	cfg  Config
	opts options
	s    *Store
}

type testCluster struct {
	t      testing.TB
	secret string
	nodes  []*testNode
}

// newCluster starts n nodes that bootstrap together, on loopback with
// random ports, and waits until all are ready.
func newCluster(t testing.TB, n int, tweak func(*Config)) *testCluster {
	t.Helper()
	return newClusterWith(t, n, tweak, nil)
}

// newClusterWith is newCluster with per-node test hooks.
func newClusterWith(t testing.TB, n int, tweak func(*Config), hooks func(id string) options) *testCluster {
	t.Helper()
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, secret: secret}
	var peers []Peer
	var lns []net.Listener
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), Addr: ln.Addr().String()})
	}
	base := t.TempDir()
	for i, p := range peers {
		cfg := c.config(p.ID, p.Addr, filepath.Join(base, p.ID), tweak)
		cfg.Peers = peers
		cfg.Listener = lns[i]
		nd := &testNode{id: p.ID, addr: p.Addr, cfg: cfg}
		if hooks != nil {
			nd.opts = hooks(p.ID)
		}
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(c.shutdownAll)
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitReady(c.nodes...)
	return c
}

func (c *testCluster) config(id, addr, dir string, tweak func(*Config)) Config {
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.RaftAddr = addr
	cfg.PublicURL = "https://" + id + ".example.test"
	cfg.DataDir = dir
	cfg.Secret = c.secret
	cfg.Logger = testLogger().With("test", c.t.Name())
	cfg.FailureGrace = time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	return cfg
}

// start opens nd's store, listening anew on its address if needed.
func (c *testCluster) start(nd *testNode) {
	c.t.Helper()
	cfg := nd.cfg
	if cfg.Listener == nil {
		ln, err := listenRetry(nd.addr)
		if err != nil {
			c.t.Fatal(err)
		}
		cfg.Listener = ln
	}
	nd.cfg.Listener = nil // consumed
	s, err := open(cfg, nd.opts)
	if err != nil {
		c.t.Fatalf("open %s: %v", nd.id, err)
	}
	nd.s = s
}

func listenRetry(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

func (c *testCluster) stop(nd *testNode) {
	c.t.Helper()
	if nd.s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nd.s.Shutdown(ctx); err != nil {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		c.t.Errorf("shutdown %s: %v\n%s", nd.id, err, buf)
	}
	nd.s = nil
}

func (c *testCluster) shutdownAll() {
	for _, nd := range c.nodes {
		c.stop(nd)
	}
}

func (c *testCluster) running() []*testNode {
	var out []*testNode
	for _, nd := range c.nodes {
		if nd.s != nil {
			out = append(out, nd)
		}
	}
	return out
}

func (c *testCluster) waitReady(nodes ...*testNode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, nd := range nodes {
		if err := nd.s.WaitReady(ctx); err != nil {
			c.t.Fatalf("%s not ready: %v", nd.id, err)
		}
	}
}

// leader waits until the running nodes agree on one leader and returns it.
func (c *testCluster) leader(within time.Duration) *testNode {
	c.t.Helper()
	var l *testNode
	eventually(c.t, within, "one agreed leader", func() bool {
		l = nil
		var leaders int
		for _, nd := range c.running() {
			if nd.s.raft.State() == raft.Leader {
				leaders++
				l = nd
			}
		}
		if leaders != 1 {
			return false
		}
		for _, nd := range c.running() {
			if _, id := nd.s.raft.LeaderWithID(); string(id) != l.id {
				return false
			}
		}
		return true
	})
	return l
}

func (c *testCluster) followers() []*testNode {
	l := c.leader(15 * time.Second)
	var out []*testNode
	for _, nd := range c.running() {
		if nd != l {
			out = append(out, nd)
		}
	}
	return out
}

func (c *testCluster) node(id string) *testNode {
	for _, nd := range c.nodes {
		if nd.id == id {
			return nd
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// converged waits until the running nodes hold identical state.
func (c *testCluster) converged(within time.Duration) []byte {
	c.t.Helper()
	var ref []byte
	eventually(c.t, within, "replicas converge", func() bool {
		ref = nil
		for _, nd := range c.running() {
			d := dump(nd.s)
			if ref == nil {
				ref = d
			} else if !bytes.Equal(ref, d) {
				return false
			}
		}
		return true
	})
	return ref
}

// dump is a canonical rendering of a replica's state.
func dump(s *Store) []byte {
	var b []byte
	s.fsm.read(func(st *state) { b, _ = json.Marshal(st) })
	return b
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func listenLoopback(t testing.TB) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().String()
}

func slogText(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
