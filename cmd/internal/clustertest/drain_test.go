package clustertest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/sdk/client"
)

// SIGTERM on a node of a cluster drains it: its room moves, the room's
// client is told to join again elsewhere and does, and the process exits 0
// within --drain-timeout.
func TestSIGTERMDrainMovesClients(t *testing.T) {
	c := newTestCluster(t, "--drain-timeout", "15s")
	a := c.procs[0]
	var reconnected atomic.Int32
	cl, err := dial(t, a, "moving", "alice", func(cl *client.Client) {
		cl.OnReconnect(func() { reconnected.Add(1) })
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a.signal(syscall.SIGTERM)
	if !a.wait(20 * time.Second) {
		t.Fatal("the drained node did not exit within 20 s of SIGTERM")
	}
	a.mu.Lock()
	code := a.cmd.ProcessState.ExitCode()
	a.mu.Unlock()
	if code != 0 {
		t.Fatalf("exit status %d after a SIGTERM drain", code)
	}
	t.Logf("node drained and exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	eventually(t, 20*time.Second, "the client to join again on another node", func() bool { return reconnected.Load() > 0 })
	if cl.Err() != nil {
		t.Fatalf("client closed: %v", cl.Err())
	}
	b := c.procs[1]
	eventually(t, 10*time.Second, "the room to be claimed by a remaining node", func() bool {
		code, claim, err := b.room("moving", true)
		return err == nil && code == http.StatusOK && claim.Owner != a.id
	})
	log, _ := os.ReadFile(filepath.Join(a.dir, "log"))
	for _, want := range []string{"draining the node out of its cluster", "drain: left the cluster", "node stopped"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the drained node's log lacks %q", want)
		}
	}
}
