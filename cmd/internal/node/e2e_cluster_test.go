package node_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/sdk/client"
)

const clusterAdminToken = "cluster-test-admin-token"

// newTestCluster starts size clustered nodes (ids n1, n2, ...) in this
// process on free ports, bootstrapped with the same peers, and waits until
// every one is a ready member. They shut down together when the test ends.
func newTestCluster(t *testing.T, size int, mutate func(i int, c *node.Config)) []*node.Node {
	t.Helper()
	secret, err := raftstore.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	lns := make([]net.Listener, size)
	var peers []string
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, fmt.Sprintf("n%d=%s", i+1, lns[i].Addr()))
	}
	level := slog.LevelWarn
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	dirs := make([]string, size)
	for i := range dirs {
		dirs[i] = t.TempDir() // before the cleanup below, which runs first
	}
	nodes := make([]*node.Node, 0, size)
	t.Cleanup(func() { shutdownAll(t, nodes) })
	for i := range size {
		cfg := node.DefaultConfig()
		cfg.DataDir = dirs[i]
		cfg.HTTP.HTTPAddr, cfg.HTTP.WebTransportAddr = "127.0.0.1:0", ""
		cfg.HTTP.AdminToken = clusterAdminToken
		cfg.Media.MediaPort, cfg.Media.IncludeLoopback, cfg.Dev = 0, true, true
		cfg.PluginDir = "none"
		cfg.Plugins = cfg.Plugins.WithCacheDir(wazeroCache)
		cfg.Cluster.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.Cluster.Listener = lns[i]
		cfg.Cluster.Peers = strings.Join(peers, ",")
		cfg.Cluster.Secret = secret
		if mutate != nil {
			mutate(i, &cfg)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name(), "test_node", cfg.Cluster.NodeID)
		n, err := node.New(cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitClusterReady(ctx); err != nil {
			t.Fatalf("%s: %v", n.ID(), err)
		}
	}
	return nodes
}

// shutdownAll stops nodes at once, so that none waits for a quorum the
// others already took away.
func shutdownAll(t *testing.T, nodes []*node.Node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := n.Shutdown(ctx); err != nil {
				t.Errorf("%s: shutdown: %v", n.ID(), err)
				if f, ferr := os.CreateTemp("", "parley-shutdown-goroutines-"); ferr == nil {
					pprof.Lookup("goroutine").WriteTo(f, 1)
					t.Logf("goroutines at the failed shutdown: %s", f.Name())
					f.Close()
				}
			}
		})
	}
	wg.Wait()
}

// counter counts the RTP packets a client receives on any remote track.
func counter(n *atomic.Int64) func(*client.Client) {
	return func(c *client.Client) {
		c.OnTrack(func(rt *client.RemoteTrack) {
			go func() {
				for {
					if _, _, err := rt.Track().ReadRTP(); err != nil {
						return
					}
					n.Add(1)
				}
			}()
		})
	}
}

// publishVP8 publishes a pumped VP8 track from c until the test ends.
func publishVP8(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	lt, err := c.PublishRTP(ctx, webrtc.MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go pump(ctx, lt, done)
	t.Cleanup(func() { cancel(); <-done })
}

// packetsFlow waits until n grew by 20 packets.
func packetsFlow(t *testing.T, n *atomic.Int64, what string) {
	t.Helper()
	before := n.Load()
	eventually(t, 20*time.Second, what, func() bool { return n.Load() >= before+20 })
}

func roomsOf(n *node.Node) map[string]int {
	out := map[string]int{}
	for _, r := range n.Rooms().Rooms() {
		out[r.Name] = r.Participants
	}
	return out
}

// A room lives on the node where it was first joined: a client that
// connects to another node is redirected there by the SDK, media flows
// between them, and every replica records both participants.
func TestClusterRoomPlacementAndRedirect(t *testing.T) {
	nodes := newTestCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	var got atomic.Int64
	callee := connectClient(t, a, "placed", "callee", counter(&got))
	caller := connectClient(t, b, "placed", "caller", nil) // redirected to a
	if rs := roomsOf(a); rs["placed"] != 2 {
		t.Fatalf("rooms on %s: %v, want both participants of placed", a.ID(), rs)
	}
	if rs := roomsOf(b); len(rs) != 0 {
		t.Fatalf("rooms on %s: %v, want none", b.ID(), rs)
	}
	if !strings.HasPrefix(caller.Transport().String(), "websocket") {
		t.Fatalf("transport after redirect: %v", caller.Transport())
	}
	publishVP8(t, caller)
	packetsFlow(t, &got, "media from the redirected caller")
	for _, n := range nodes {
		eventually(t, 5*time.Second, "presence on "+n.ID(), func() bool { return len(n.Store().Participants("placed")) == 2 })
		c, ok := n.Store().Room("placed")
		if !ok || c.Owner != a.ID() {
			t.Fatalf("%s sees claim %+v, %v", n.ID(), c, ok)
		}
	}
	// The room empties: its claim is released, and the next join claims it
	// on the node it reaches.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []*client.Client{caller, callee} {
		if err := c.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "participants gone from a", func() bool { return len(roomsOf(a)) == 0 })
	eventually(t, 10*time.Second, "the claim released", func() bool {
		_, ok := b.Store().Room("placed")
		return !ok
	})
	connectClient(t, b, "placed", "late", nil)
	if rs := roomsOf(b); rs["placed"] != 1 {
		t.Fatalf("rooms on %s after the release: %v", b.ID(), rs)
	}
}

// A draining node hands its rooms over: its clients are told to move and
// the SDK joins the room again on another node, publishing again, so that
// media flows again without the application doing anything.
func TestClusterDrainMovesClients(t *testing.T) {
	nodes := newTestCluster(t, 3, nil)
	a := nodes[0]
	var got atomic.Int64
	var reconnects atomic.Int32
	callee := connectClient(t, a, "moving", "callee", func(c *client.Client) {
		counter(&got)(c)
		c.OnReconnect(func() { reconnects.Add(1) })
	})
	caller := connectClient(t, a, "moving", "caller", nil)
	publishVP8(t, caller)
	packetsFlow(t, &got, "media before the drain")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(a.URL() + "/healthz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz of the drained node: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	eventually(t, 20*time.Second, "the room on another node with both participants", func() bool {
		for _, n := range nodes[1:] {
			if roomsOf(n)["moving"] == 2 {
				return true
			}
		}
		return false
	})
	packetsFlow(t, &got, "media after the move")
	for _, c := range []*client.Client{callee, caller} {
		if st := c.State(); st != client.StateConnected {
			t.Fatalf("client in state %v after the move", st)
		}
	}
	if reconnects.Load() == 0 {
		t.Fatal("OnReconnect not called after the move")
	}
	// The drained node left the cluster.
	eventually(t, 10*time.Second, "a removed from the cluster", func() bool {
		_, ok := nodes[1].Store().Node(a.ID())
		return !ok
	})
}

// Loading a plugin on one node loads it on all of them (module bytes go
// through the cluster state), and unloading it on another removes it
// everywhere.
func TestClusterPluginSetReplicated(t *testing.T) {
	module, err := os.ReadFile(pluginWasm(t, "testplug"))
	if err != nil {
		t.Fatal(err)
	}
	nodes := newTestCluster(t, 3, nil)
	adminPlugin(t, nodes[1], http.MethodPut, "testplug", module, `{"version":"v-cluster","capabilities":["config","kv","log","webhook"]}`)
	for _, n := range nodes {
		eventually(t, 60*time.Second, "testplug loaded on "+n.ID(), func() bool {
			for _, p := range n.Plugins().List() {
				if p.Name == "testplug" && p.Version == "v-cluster" {
					return true
				}
			}
			return false
		})
	}
	// The plugin decides on every node: it denies rooms named deny-*.
	tok, err := nodes[2].MintToken("deny-me", "eve", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nodes[2].SignalURL(), tok, client.WithLoopback())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); !errorsIsCode(err, core.CodeForbidden) {
		t.Fatalf("join of deny-me on %s: %v, want forbidden by the replicated plugin", nodes[2].ID(), err)
	}
	adminPlugin(t, nodes[2], http.MethodDelete, "testplug", nil, "")
	for _, n := range nodes {
		eventually(t, 20*time.Second, "testplug unloaded on "+n.ID(), func() bool { return len(n.Plugins().List()) == 0 })
	}
}

func errorsIsCode(err error, code core.Code) bool { return err != nil && core.CodeOf(err) == code }

// adminPlugin loads (PUT) or unloads (DELETE) a plugin through n's admin API.
func adminPlugin(t *testing.T, n *node.Node, method, name string, module []byte, manifest string) {
	t.Helper()
	var body bytes.Buffer
	ctype := ""
	if module != nil {
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("module", name+".wasm")
		fw.Write(module)
		mw.WriteField("manifest", manifest)
		mw.Close()
		ctype = mw.FormDataContentType()
	}
	req, err := http.NewRequest(method, n.URL()+"/v1/admin/plugins/"+name, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+clusterAdminToken)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	hc := &http.Client{Timeout: 2 * time.Minute}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		t.Fatalf("%s %s on %s: %s %s", method, name, n.ID(), resp.Status, b.String())
	}
}
