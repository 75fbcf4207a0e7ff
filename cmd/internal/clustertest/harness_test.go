package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/sdk/client"
)

const (
	tokenSecret = "clustertest-token-secret-0123456789"
	adminToken  = "clustertest-admin-token"
)

var (
	buildOnce sync.Once
	parleyBin string
	buildErr  error
)

// binary builds the parley command once per test run.
func binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process cluster test (-short)")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-clustertest-")
		if err != nil {
			buildErr = err
			return
		}
		parleyBin = filepath.Join(dir, "parley")
		cmd := exec.Command("go", "build", "-o", parleyBin, "./cmd/parley")
		cmd.Dir = filepath.Join("..", "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build parley: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return parleyBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if parleyBin != "" {
		os.RemoveAll(filepath.Dir(parleyBin))
	}
	os.Exit(code)
}

// proc is one parley process of a test cluster.
type proc struct {
	t        testing.TB
	id       string
	dir      string
	httpAddr string
	raftAddr string
	args     []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs the process with its arguments (the same every time).
func (p *proc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(filepath.Join(p.dir, "log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(binary(p.t), p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(cleanEnv(), "XDG_CONFIG_HOME="+p.dir)
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
}

// cleanEnv is the environment without PARLEY_ settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

// wait waits for the process to exit.
func (p *proc) wait(d time.Duration) bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return true
	}
	select {
	case <-exited:
		return true
	case <-time.After(d):
		return false
	}
}

// stop ends the process: SIGCONT (in case it is frozen), SIGINT, SIGKILL
// if it lingers.
func (p *proc) stop() {
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGINT)
	if !p.wait(10 * time.Second) {
		p.kill()
	}
}

func (p *proc) baseURL() string   { return "http://" + p.httpAddr }
func (p *proc) signalURL() string { return "ws://" + p.httpAddr + "/v1/signal" }

// get fetches an admin API path, answering the status and decoding a 200
// answer into out.
func (p *proc) get(ctx context.Context, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.baseURL()+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

// status returns the node's view of the cluster.
func (p *proc) status() (raftstore.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var st raftstore.Status
	code, err := p.get(ctx, "/v1/admin/cluster", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	return st, err
}

// room reads the claim on name from the node, consistently or not: it
// returns the HTTP status (200 claimed, 404 not claimed, 503 cut off) and
// the claim.
func (p *proc) room(name string, consistent bool) (int, core.RoomClaim, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var c core.RoomClaim
	code, err := p.get(ctx, fmt.Sprintf("/v1/admin/cluster/rooms/%s?consistent=%t", name, consistent), &c)
	return code, c, err
}

// testCluster is three parley processes bootstrapped together.
type testCluster struct {
	t     testing.TB
	procs []*proc
}

// freeAddr returns a loopback address with a port that is free now. The
// process that will bind it starts later (and binds it again after each
// restart), so the port is drawn below Linux's ephemeral range (32768 and
// up): the ":0" listeners of tests running in parallel cannot take it in
// between.
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// newTestCluster starts three nodes with extra serve flags and waits until
// they form a cluster.
func newTestCluster(t testing.TB, extra ...string) *testCluster {
	t.Helper()
	binary(t)
	secret, err := raftstore.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t}
	var peers []string
	for i := range 3 {
		p := &proc{t: t, id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
		c.procs = append(c.procs, p)
		peers = append(peers, p.id+"="+p.raftAddr)
	}
	t.Cleanup(c.stop)
	for _, p := range c.procs {
		p.args = append([]string{"serve", "--dev", "--data-dir", p.dir, "--node-id", p.id,
			"--http-addr", p.httpAddr, "--webtransport-addr=", "--media-port", "0", "--raft-addr", p.raftAddr,
			"--peers", strings.Join(peers, ","), "--cluster-secret", secret, "--token-secret", tokenSecret,
			"--admin-token", adminToken, "--plugin-dir", "none"}, extra...)
		p.start()
	}
	c.waitReady(20*time.Second, c.procs...)
	return c
}

// stop ends every process; on failure it shows the end of their logs.
func (c *testCluster) stop() {
	var wg sync.WaitGroup
	for _, p := range c.procs {
		wg.Go(p.stop)
	}
	wg.Wait()
	if c.t.Failed() {
		for _, p := range c.procs {
			b, _ := os.ReadFile(filepath.Join(p.dir, "log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			c.t.Logf("--- log of %s (last lines):\n%s", p.id, strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
	}
}

// waitReady waits until each of ps knows a leader and sees every node of
// the cluster registered.
func (c *testCluster) waitReady(d time.Duration, ps ...*proc) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for _, p := range ps {
		for {
			st, err := p.status()
			if err == nil && st.Leader != "" && registered(st) == len(c.procs) {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s not ready after %s: %+v, %v", p.id, d, st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func registered(st raftstore.Status) int {
	n := 0
	for _, ns := range st.Nodes {
		if ns.Registered && !ns.Down && ns.Suffrage == "Voter" {
			n++
		}
	}
	return n
}

// leader returns the process that leads, as the cluster sees it.
func (c *testCluster) leader() *proc {
	c.t.Helper()
	for _, p := range c.procs {
		if st, err := p.status(); err == nil && st.State == "Leader" {
			return p
		}
	}
	c.t.Fatal("no leader")
	return nil
}

func (c *testCluster) others(x ...*proc) []*proc {
	var out []*proc
	for _, p := range c.procs {
		skip := false
		for _, q := range x {
			skip = skip || p == q
		}
		if !skip {
			out = append(out, p)
		}
	}
	return out
}

// dial connects a client with identity to room at p.
func dial(t testing.TB, p *proc, room, identity string, setup func(*client.Client)) (*client.Client, error) {
	tok, err := node.MintWithSecret([]byte(tokenSecret), core.Claims{Identity: identity, Room: room, Grants: core.AllGrants}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(p.signalURL(), tok, client.WithLoopback())
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
