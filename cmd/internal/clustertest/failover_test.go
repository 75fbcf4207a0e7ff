package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/sdk/client"
)

// joined is a room a client joined: its claim was committed.
type joined struct {
	room  string
	owner string // node id the client landed on
}

// joinContinuously makes clients join a new room on every node every
// 50 ms until the function it returns is called; that returns the rooms
// joined.
func joinContinuously(t *testing.T, c *testCluster) func() []joined {
	var mu sync.Mutex
	var done []joined
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, p := range c.procs {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				room := fmt.Sprintf("kill-%d-%d", w, i)
				if _, err := dial(t, p, room, "u", nil); err == nil {
					mu.Lock()
					done = append(done, joined{room, p.id})
					mu.Unlock()
				}
			}
		})
	}
	return func() []joined {
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return append([]joined(nil), done...)
	}
}

// SIGKILL of the leader while clients join rooms on every node: a
// survivor leads within 2 s, every room claimed before (or during) the
// kill is still claimed, the clients of a call on the dead node land on a
// live one (after the failure grace) with media flowing again, and the
// killed node restarts from its data and rejoins with the same command
// line.
func TestLeaderKilledWhileJoining(t *testing.T) {
	c := newTestCluster(t, "--cluster-failure-grace", "2s")
	old := c.leader()
	var got atomic.Int64
	callee, err := dial(t, old, "on-the-dead-node", "callee", countPackets(&got))
	if err != nil {
		t.Fatal(err)
	}
	caller, err := dial(t, old, "on-the-dead-node", "caller", nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, caller)
	waitPackets(t, &got, "media before the kill")
	stopJoining := joinContinuously(t, c)
	time.Sleep(time.Second)
	start := time.Now()
	old.kill()
	var took time.Duration
	eventually(t, 10*time.Second, "a new leader", func() bool {
		for _, p := range c.others(old) {
			if st, err := p.status(); err == nil && st.State == "Leader" {
				took = time.Since(start)
				return true
			}
		}
		return false
	})
	t.Logf("new leader %s after SIGKILL of %s", took.Round(time.Millisecond), old.id)
	if took > 2*time.Second {
		t.Errorf("new leader after %s, want under 2 s", took)
	}
	time.Sleep(time.Second) // joins go on against the survivors
	rooms := stopJoining()
	survivor := c.others(old)[0]
	perNode := map[string]int{}
	for _, j := range rooms {
		perNode[j.owner]++
		if j.owner == old.id {
			continue // released after the failure grace, or at its restart
		}
		code, claim, err := survivor.room(j.room, true)
		if err != nil || code != http.StatusOK || claim.Owner != j.owner {
			t.Errorf("room %s joined on %s: consistent read on %s gives %d %+v %v", j.room, j.owner, survivor.id, code, claim, err)
		}
	}
	t.Logf("rooms joined per node: %v", perNode)
	if perNode[survivor.id] == 0 || perNode[old.id] == 0 {
		t.Fatalf("joins did not reach every node: %v", perNode)
	}
	eventually(t, 45*time.Second, "the call's clients on a live node", func() bool {
		return callee.State() == client.StateConnected && caller.State() == client.StateConnected &&
			roomHas(c, "on-the-dead-node", 2)
	})
	waitPackets(t, &got, "media after the move to a live node")
	t.Logf("call moved to a live node %s after the kill", time.Since(start).Round(time.Millisecond))

	old.start()
	c.waitReady(20*time.Second, c.procs...)
	for _, j := range rooms {
		if j.owner == old.id {
			continue
		}
		if code, claim, err := old.room(j.room, true); err != nil || code != http.StatusOK || claim.Owner != j.owner {
			t.Errorf("restarted %s: room %s reads %d %+v %v", old.id, j.room, code, claim, err)
		}
	}
	st, _ := old.status()
	if st.AppliedIndex == 0 || st.Leader == "" {
		t.Fatalf("restarted node's status: %+v", st)
	}
}

// SIGSTOP of the leader beyond the election timeout (and the failure
// grace), then SIGCONT: the frozen node's stale view serves no consistent
// read, there is never more than one leader per term, and the clients of
// its room (which the cluster released meanwhile) end up in a working call
// again.
func TestFrozenNodeNoSplitBrain(t *testing.T) {
	c := newTestCluster(t, "--cluster-failure-grace", "1s")
	frozen := c.leader()
	var got atomic.Int64
	callee, err := dial(t, frozen, "frozen-room", "callee", countPackets(&got))
	if err != nil {
		t.Fatal(err)
	}
	caller, err := dial(t, frozen, "frozen-room", "caller", nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, caller)
	waitPackets(t, &got, "media before the freeze")

	frozen.signal(syscall.SIGSTOP)
	other := c.others(frozen)[0]
	eventually(t, 10*time.Second, "a leader among the others", func() bool {
		st, err := other.status()
		return err == nil && st.Leader != "" && st.Leader != frozen.id
	})
	if _, err := dial(t, other, "claimed-while-frozen", "bob", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the frozen node's room released", func() bool {
		code, _, _ := other.room("frozen-room", true)
		return code == http.StatusNotFound
	})
	frozen.signal(syscall.SIGCONT)
	stale, served := 0, 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		if code, _, _ := frozen.room("claimed-while-frozen", false); code == http.StatusNotFound {
			stale++
		}
		code, claim, err := frozen.room("claimed-while-frozen", true)
		switch {
		case err != nil || code == http.StatusServiceUnavailable:
		case code == http.StatusOK && claim.Owner == other.id:
			served++
		default:
			t.Fatalf("consistent read on the resumed node: %d %+v %v (stale)", code, claim, err)
		}
	}
	t.Logf("after SIGCONT: %d stale local reads, %d correct consistent reads", stale, served)
	if served == 0 {
		t.Fatal("the resumed node served no consistent read within a second")
	}
	checkOneLeaderPerTerm(t, c)
	// The room left the frozen node while it was away: its clients are
	// moved and find each other again.
	eventually(t, 30*time.Second, "both clients connected again", func() bool {
		return callee.State() == client.StateConnected && caller.State() == client.StateConnected && roomHas(c, "frozen-room", 2)
	})
	waitPackets(t, &got, "media after the move")
}

// checkOneLeaderPerTerm fails if two nodes report leading the same term.
func checkOneLeaderPerTerm(t *testing.T, c *testCluster) {
	t.Helper()
	leaders := map[uint64]string{}
	for _, p := range c.procs {
		st, err := p.status()
		if err != nil || st.State != "Leader" {
			continue
		}
		if prev, ok := leaders[st.Term]; ok {
			t.Fatalf("split brain: %s and %s both lead term %d", prev, p.id, st.Term)
		}
		leaders[st.Term] = p.id
	}
}

// roomHas reports whether room is claimed (as the first node that answers
// sees it) and its owner has at least n signaling sessions.
func roomHas(c *testCluster, room string, n int) bool {
	var claim core.RoomClaim
	for _, p := range c.procs {
		code, cl, err := p.room(room, false)
		if err == nil && code == http.StatusOK {
			claim = cl
			break
		}
	}
	if claim.Owner == "" {
		return false
	}
	for _, p := range c.procs {
		if p.id != claim.Owner {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var info struct{ Sessions int }
		if _, err := p.get(ctx, "/v1/info", &info); err != nil {
			return false
		}
		return info.Sessions >= n
	}
	return false
}

// A call on node A goes on while B and C are killed and restarted: media
// never waits on Raft.
func TestMediaSurvivesOtherNodes(t *testing.T) {
	c := newTestCluster(t)
	a := c.procs[0]
	var got atomic.Int64
	if _, err := dial(t, a, "steady", "callee", countPackets(&got)); err != nil {
		t.Fatal(err)
	}
	caller, err := dial(t, a, "steady", "caller", nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, caller)
	waitPackets(t, &got, "media before the kills")
	for _, p := range c.others(a) {
		p.kill()
	}
	before := got.Load()
	time.Sleep(2 * time.Second)
	if n := got.Load() - before; n < 100 {
		t.Fatalf("%d packets in 2 s with B and C dead, want a steady ~200", n)
	}
	for _, p := range c.others(a) {
		p.start()
	}
	c.waitReady(20*time.Second, c.procs...)
	waitPackets(t, &got, "media after the restarts")
	if code, claim, err := c.procs[1].room("steady", true); err != nil || code != http.StatusOK || claim.Owner != a.id {
		t.Fatalf("room claim after the restarts: %d %+v %v", code, claim, err)
	}
}

// countPackets counts RTP packets on every remote track of a client.
func countPackets(n *atomic.Int64) func(*client.Client) {
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

// publish publishes a VP8 track from c fed with a packet every 10 ms.
func publish(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	lt, err := c.PublishRTP(ctx, webrtc.MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, 200)}
		for seq := uint16(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*900
			pkt.Payload[0] = 0x10
			_ = lt.WriteRTP(pkt)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func waitPackets(t *testing.T, n *atomic.Int64, what string) {
	t.Helper()
	before := n.Load()
	eventually(t, 20*time.Second, what, func() bool { return n.Load() >= before+20 })
}
