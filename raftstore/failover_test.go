package raftstore

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

func TestLeaderShutdownFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 30*time.Second)
	var rooms []core.RoomClaim
	for i, nd := range c.nodes {
		for j := range 3 {
			claim, err := nd.s.ClaimRoom(ctx, fmt.Sprintf("room-%d-%d", i, j), "")
			if err != nil {
				t.Fatal(err)
			}
			rooms = append(rooms, claim)
		}
	}
	old := c.leader(15 * time.Second)
	start := time.Now()
	c.stop(old)
	l := c.leader(15 * time.Second)
	took := time.Since(start)
	t.Logf("new leader %s %v after the leader's shutdown began", l.id, took)
	if took > 2*time.Second {
		t.Errorf("failover took %v, want under 2s", took)
	}
	if err := l.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range rooms {
		for _, nd := range c.running() {
			if got, ok := nd.s.Room(want.Room); !ok || got != want {
				if err := nd.s.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if got, ok = nd.s.Room(want.Room); !ok || got != want {
					t.Fatalf("%s lost %+v (has %+v)", nd.id, want, got)
				}
			}
		}
	}
	// Writes go on, from both survivors.
	for _, nd := range c.running() {
		if _, err := nd.s.ClaimRoom(ctx, "after-"+nd.id, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The old leader restarts from its data and catches up.
	c.start(old)
	c.waitReady(old)
	c.converged(15 * time.Second)
}

func TestDeadNodeRoomsReleased(t *testing.T) {
	for _, victimIsLeader := range []bool{false, true} {
		t.Run("leader="+strconv.FormatBool(victimIsLeader), func(t *testing.T) {
			testDeadNode(t, victimIsLeader)
		})
	}
}

func testDeadNode(t *testing.T, victimIsLeader bool) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.FailureGrace = time.Second })
	ctx := ctxT(t, 30*time.Second)
	v := c.followers()[0]
	if victimIsLeader {
		v = c.leader(15 * time.Second)
	}
	var other *testNode
	for _, nd := range c.nodes {
		if nd != v {
			other = nd
		}
	}
	for i := range 3 {
		if _, err := v.s.ClaimRoom(ctx, fmt.Sprintf("v-%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.s.ClaimRoom(ctx, "o", ""); err != nil {
		t.Fatal(err)
	}
	joined := func(pid, room, node string) core.PresenceChange {
		return core.PresenceChange{PresenceEvent: core.PresenceEvent{Kind: core.PresenceJoined, Room: room,
			Identity: "id-" + pid, ParticipantID: pid, Node: node, At: time.Now()}, Session: "SE_" + pid}
	}
	if err := v.s.RecordPresence(ctx, joined("PA_v1", "v-0", v.id), joined("PA_v2", "v-1", v.id)); err != nil {
		t.Fatal(err)
	}
	if err := other.s.RecordPresence(ctx, joined("PA_o1", "o", other.id)); err != nil {
		t.Fatal(err)
	}
	c.converged(15 * time.Second)
	stopped := time.Now()
	c.stop(v)
	eventually(t, 30*time.Second, "the dead node's rooms released and presence ended", func() bool {
		for _, nd := range c.running() {
			if len(nd.s.Participants("")) != 1 || len(nd.s.Rooms()) != 1 {
				return false
			}
			if n, _ := nd.s.Node(v.id); !n.Down {
				return false
			}
		}
		return true
	})
	took := time.Since(stopped)
	t.Logf("released %v after the node stopped (grace %v)", took, time.Second)
	if took < time.Second {
		t.Errorf("released after %v, before the grace period", took)
	}
	for _, nd := range c.running() {
		if p := nd.s.Participants(""); p[0].ParticipantID != "PA_o1" {
			t.Fatalf("%s kept %+v", nd.id, p)
		}
		entries, _ := nd.s.PresenceJournal(0, 0)
		left := 0
		for _, je := range entries {
			if e := je.Event; e.Kind == core.PresenceLeft && e.Node == v.id && e.Reason == "node_failed" {
				left++
			}
		}
		if left != 2 {
			t.Fatalf("%s journal has %d node_failed leaves: %+v", nd.id, left, entries)
		}
	}
	// Back from the dead: it registers again and can claim rooms.
	c.start(v)
	c.waitReady(v)
	eventually(t, 15*time.Second, "node up again", func() bool {
		n, _ := other.s.Node(v.id)
		return !n.Down
	})
	if claim, err := v.s.ClaimRoom(ctx, "v-0", ""); err != nil || claim.Owner != v.id {
		t.Fatalf("reclaim: %+v, %v", claim, err)
	}
}

func TestSnapshotRestore(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 8
		cfg.SnapshotThreshold = 1 << 20 // only explicit snapshots
	})
	ctx := ctxT(t, 60*time.Second)
	f := c.followers()[0]
	// Writes go through nodes other than f: a node that starts releases
	// its own rooms, and f's state must come back as it was.
	write := func(prefix string, n int) {
		var run []*testNode
		for _, nd := range c.running() {
			if nd != f {
				run = append(run, nd)
			}
		}
		for i := range n {
			nd := run[i%len(run)]
			if _, err := nd.s.ClaimRoom(ctx, fmt.Sprintf("%s-%d", prefix, i), "m"); err != nil {
				t.Fatal(err)
			}
			ch := core.PresenceChange{PresenceEvent: core.PresenceEvent{Kind: core.PresenceJoined, Room: fmt.Sprintf("%s-%d", prefix, i),
				Identity: "u", ParticipantID: fmt.Sprintf("PA_%s%d", prefix, i), Node: nd.id, At: time.Now()}}
			if err := nd.s.RecordPresence(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("a", 30)
	if err := f.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	appliedBefore := f.s.AppliedIndex()
	if err := f.s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	snapIndex, _ := strconv.ParseUint(f.s.raft.Stats()["last_snapshot_index"], 10, 64)
	first, err := f.s.logs.FirstIndex()
	if err != nil || snapIndex == 0 || first <= 1 {
		t.Fatalf("after snapshot: snapshot index %d, first log index %d, %v: log not compacted", snapIndex, first, err)
	}
	write("b", 10)
	want := c.converged(15 * time.Second)
	c.stop(f)
	c.start(f)
	// NewRaft restored the snapshot before returning (it replays no log
	// until it hears from a leader).
	if got := f.s.AppliedIndex(); got < appliedBefore {
		t.Fatalf("applied index %d right after restart, want at least the snapshot's %d", got, appliedBefore)
	}
	c.waitReady(f)
	if got := c.converged(15 * time.Second); string(got) != string(want) {
		t.Fatal("state after restart differs")
	}
	// A snapshot shipped to a lagging follower: compact the leader's log
	// while a follower is down, then bring it back.
	g := c.followers()[0]
	c.stop(g)
	write("c", 20)
	l := c.leader(15 * time.Second)
	if err := l.s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.start(g)
	c.waitReady(g)
	c.converged(15 * time.Second)
}

func TestRestartSameConfigNoDoubleBootstrap(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	n1 := c.nodes[0]
	if _, err := n1.s.ClaimRoom(ctx, "hosted", ""); err != nil {
		t.Fatal(err)
	}
	join := core.PresenceChange{PresenceEvent: core.PresenceEvent{Kind: core.PresenceJoined, Room: "hosted",
		Identity: "u", ParticipantID: "PA_u", At: time.Now()}}
	if err := n1.s.RecordPresence(ctx, join); err != nil {
		t.Fatal(err)
	}
	// Cluster-wide state that no node owns.
	if err := c.nodes[1].s.EnqueueWebhooks(ctx, 0, 0, []core.Webhook{{ID: "W1", URL: "https://hook.test", Host: "hook.test"}}); err != nil {
		t.Fatal(err)
	}
	c.converged(15 * time.Second)
	term := c.leader(15 * time.Second).s.raft.CurrentTerm()
	last := map[string]uint64{}
	for _, nd := range c.nodes {
		last[nd.id] = nd.s.raft.LastIndex()
	}
	c.shutdownAll()
	for _, nd := range c.nodes {
		c.start(nd) // same Config, Peers included
	}
	c.waitReady(c.nodes...)
	l := c.leader(15 * time.Second)
	if l.s.raft.CurrentTerm() <= term {
		t.Fatalf("term %d after restart, was %d", l.s.raft.CurrentTerm(), term)
	}
	for _, nd := range c.nodes {
		if nd.s.raft.LastIndex() < last[nd.id] {
			t.Fatalf("%s log shrank from %d to %d: bootstrapped again?", nd.id, last[nd.id], nd.s.raft.LastIndex())
		}
	}
	// The restarted n1 hosts nothing: its room and participant were
	// released, and the participant's leave is journalled.
	eventually(t, 30*time.Second, "n1's old room released", func() bool {
		_, ok := c.nodes[2].s.Room("hosted")
		return !ok && len(c.nodes[2].s.Participants("")) == 0
	})
	c.converged(15 * time.Second)
	for _, nd := range c.nodes {
		if n := len(nd.s.Status().Nodes); n != 3 {
			t.Fatalf("%s sees %d nodes", nd.id, n)
		}
		if out := nd.s.PendingWebhooks(); len(out) != 1 || out[0].ID != "W1" {
			t.Fatalf("%s outbox after restart: %+v", nd.id, out)
		}
		// room_started, joined, then on restart left and room_finished.
		entries, _ := nd.s.PresenceJournal(0, 0)
		if len(entries) != 4 || entries[2].Event.Kind != core.PresenceLeft || entries[2].Event.Reason != "node_restarted" ||
			entries[3].Event.Kind != core.PresenceRoomFinished || entries[3].Event.Reason != "node_restarted" {
			t.Fatalf("%s journal after restart: %+v", nd.id, entries)
		}
	}
}

func TestRecoverLostQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 30*time.Second)
	if err := c.nodes[1].s.EnqueueWebhooks(ctx, 0, 0, []core.Webhook{{ID: "W1", URL: "https://hook.test/x", Host: "hook.test"}}); err != nil {
		t.Fatal(err)
	}
	c.converged(15 * time.Second)
	c.shutdownAll()
	// n2 and n3 are gone for good; n1 becomes a cluster of one.
	n1 := c.nodes[0]
	if err := RecoverCluster(n1.cfg, []Peer{{ID: n1.id, Addr: n1.addr}}); err != nil {
		t.Fatal(err)
	}
	c.start(n1)
	c.waitReady(n1)
	if c.leader(10*time.Second) != n1 {
		t.Fatal("the survivor does not lead")
	}
	if out := n1.s.PendingWebhooks(); len(out) != 1 {
		t.Fatalf("state lost in recovery: %+v", out)
	}
	if _, err := n1.s.ClaimRoom(ctx, "after-recovery", ""); err != nil {
		t.Fatal(err)
	}
	if n := len(n1.s.Status().Nodes); n != 1 {
		eventually(t, 30*time.Second, "lost nodes dropped from the registry", func() bool { return len(n1.s.Status().Nodes) == 1 })
	}
}
