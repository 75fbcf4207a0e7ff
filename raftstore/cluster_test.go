package raftstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

func TestClusterBootstrapAndForwardedClaim(t *testing.T) {
	c := newCluster(t, 3, nil)
	f := c.followers()[0]
	claim, err := f.s.ClaimRoom(ctxT(t, 10*time.Second), "lobby", "meta")
	if err != nil {
		t.Fatal(err)
	}
	if claim.Owner != f.id || claim.OwnerURL != f.cfg.PublicURL || claim.Epoch == 0 || claim.Metadata != "meta" {
		t.Fatalf("claim = %+v", claim)
	}
	c.converged(15 * time.Second)
	for _, nd := range c.nodes {
		got, ok := nd.s.Room("lobby")
		if !ok || got != claim {
			t.Fatalf("%s sees %+v, %v; want %+v", nd.id, got, ok, claim)
		}
		if len(nd.s.Nodes()) != 3 {
			t.Fatalf("%s sees nodes %+v", nd.id, nd.s.Nodes())
		}
	}
	// A second claim from another node gets the owner's claim back.
	other := c.leader(15 * time.Second)
	again, err := other.s.ClaimRoom(ctxT(t, 10*time.Second), "lobby", "")
	if err != nil || again != claim {
		t.Fatalf("second claim = %+v, %v; want %+v", again, err, claim)
	}
	// Releasing someone else's room is a conflict; the owner's release works.
	if err := other.s.ReleaseRoom(ctxT(t, 10*time.Second), "lobby", claim.Epoch); !errors.Is(err, ErrNotOwner) || core.CodeOf(err) != core.CodeConflict {
		t.Fatalf("foreign release: %v", err)
	}
	if err := f.s.ReleaseRoom(ctxT(t, 10*time.Second), "lobby", claim.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Sync(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.s.Room("lobby"); ok {
		t.Fatal("room still claimed after release")
	}
	// A new claim gets a larger epoch.
	next, err := other.s.ClaimRoom(ctxT(t, 10*time.Second), "lobby", "")
	if err != nil || next.Owner != other.id || next.Epoch <= claim.Epoch {
		t.Fatalf("reclaim = %+v, %v", next, err)
	}
}

func TestConcurrentClaimsOneOwner(t *testing.T) {
	c := newCluster(t, 3, nil)
	for round := range 5 {
		room := fmt.Sprintf("contested-%d", round)
		claims := make([]core.RoomClaim, len(c.nodes))
		errs := make([]error, len(c.nodes))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, nd := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				claims[i], errs[i] = nd.s.ClaimRoom(context.Background(), room, nd.id)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, c.nodes[i].id, err)
			}
			if claims[i] != claims[0] {
				t.Fatalf("round %d: claims differ: %+v vs %+v", round, claims[i], claims[0])
			}
		}
		c.converged(15 * time.Second)
		for _, nd := range c.nodes {
			if got, _ := nd.s.Room(room); got != claims[0] {
				t.Fatalf("round %d: %s sees %+v, want %+v", round, nd.id, got, claims[0])
			}
		}
	}
}

func TestDedupeRepeatedRequestID(t *testing.T) {
	c := newCluster(t, 3, nil)
	fs := c.followers()
	ctx := ctxT(t, 20*time.Second)
	join := core.PresenceChange{PresenceEvent: core.PresenceEvent{
		Kind: core.PresenceJoined, Room: "r", Identity: "alice", ParticipantID: "PA_1", Node: fs[0].id, At: time.Now(),
	}, Session: "SE_1"}
	cmd := &Presence{Header: Header{RequestID: "RQ_fixed"}, Changes: []PresenceEntry{entryOf(join)}}
	first, err := fs[0].s.Apply(ctx, cmd)
	if err != nil || first.Duplicate {
		t.Fatalf("first apply: %+v, %v", first, err)
	}
	// Same request id, through another node: applied once, same answer.
	again := &Presence{Header: Header{RequestID: "RQ_fixed"}, Changes: []PresenceEntry{entryOf(join)}}
	second, err := fs[1].s.Apply(ctx, again)
	if err != nil || !second.Duplicate || second.Index != first.Index {
		t.Fatalf("second apply: %+v, %v (first %+v)", second, err, first)
	}
	c.converged(15 * time.Second)
	for _, nd := range c.nodes {
		entries, _ := nd.s.PresenceJournal(0, 0)
		if len(entries) != 1 {
			t.Fatalf("%s journal has %d entries, want 1", nd.id, len(entries))
		}
	}
	// A repeated claim answers with the first claim even after the room
	// changed hands.
	claim := &ClaimRoom{Header: Header{RequestID: "RQ_claim"}, Room: "x", Node: fs[0].id}
	r1, err := fs[0].s.Apply(ctx, claim)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs[0].s.ReleaseRoom(ctx, "x", 0); err != nil {
		t.Fatal(err)
	}
	r2, err := fs[1].s.Apply(ctx, &ClaimRoom{Header: Header{RequestID: "RQ_claim"}, Room: "x", Node: fs[0].id})
	if err != nil || !r2.Duplicate || *r2.Claim != *r1.Claim {
		t.Fatalf("repeat claim: %+v, %v", r2, err)
	}
	if err := fs[1].s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := fs[1].s.Room("x"); ok {
		t.Fatal("a repeated claim was applied again")
	}
}

func TestPresenceAndEvents(t *testing.T) {
	c := newCluster(t, 3, nil)
	f := c.followers()[0]
	var mu sync.Mutex
	var got []core.ClusterEvent
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.s.WatchCluster(ctx, func(ev core.ClusterEvent) {
		if ev.Kind == core.ClusterNodeChanged {
			return // late registrations
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	})
	l := c.leader(15 * time.Second)
	if _, err := l.s.ClaimRoom(ctxT(t, 10*time.Second), "room", ""); err != nil {
		t.Fatal(err)
	}
	// core.Presence path: queued, committed in the background.
	ev := core.PresenceEvent{Kind: core.PresenceJoined, Room: "room", Identity: "bob", ParticipantID: "PA_b", At: time.Now()}
	l.s.Presence(context.Background(), ev)
	ev.Kind, ev.Reason = core.PresenceLeft, "leave"
	l.s.Presence(context.Background(), ev)
	eventually(t, 15*time.Second, "claim, join and leave events on a follower", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 4
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0].Kind != core.ClusterRoomClaimed || got[0].Room.Owner != l.id {
		t.Fatalf("event 0 = %+v", got[0])
	}
	// The claim journals the room's start.
	if p := got[1].Presence; got[1].Kind != core.ClusterPresence || p.Kind != core.PresenceRoomStarted || p.Room != "room" ||
		p.Node != l.id || !strings.HasPrefix(p.ID, "pe_") || got[1].Index != got[0].Index {
		t.Fatalf("event 1 = %+v", got[1])
	}
	got = got[1:]
	if got[1].Kind != core.ClusterPresence || got[1].Presence.Kind != core.PresenceJoined || got[1].Presence.Node != l.id {
		t.Fatalf("event 1 = %+v", got[1])
	}
	if got[2].Presence.Kind != core.PresenceLeft || got[2].Presence.Reason != "leave" {
		t.Fatalf("event 2 = %+v", got[2])
	}
	if n := len(f.s.Participants("room")); n != 0 {
		t.Fatalf("%d participants after leave", n)
	}
}

func TestDrainRefusesNewRooms(t *testing.T) {
	c := newCluster(t, 3, nil)
	f := c.followers()[0]
	ctx := ctxT(t, 20*time.Second)
	if _, err := f.s.ClaimRoom(ctx, "before", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.ClaimRoom(ctx, "after", "")
	if !errors.Is(err, ErrDraining) || core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("claim while draining: %v", err)
	}
	if claim, err := f.s.ClaimRoom(ctx, "before", ""); err != nil || claim.Owner != f.id {
		t.Fatalf("existing claim while draining: %+v, %v", claim, err)
	}
	if n, _ := c.nodes[0].s.Node(f.id); !n.Draining {
		eventually(t, 15*time.Second, "drain replicated", func() bool { n, _ := c.nodes[0].s.Node(f.id); return n.Draining })
	}
	if err := f.s.SetDraining(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ClaimRoom(ctx, "after", ""); err != nil {
		t.Fatal(err)
	}
}

func TestPluginSetReplicatedContentAddressed(t *testing.T) {
	c := newCluster(t, 3, nil)
	f := c.followers()[0]
	ctx := ctxT(t, 30*time.Second)
	module := make([]byte, 3*ModuleChunkSize+12345)
	_, _ = rand.Read(module)
	sum := sha256.Sum256(module)
	digest := hex.EncodeToString(sum[:])
	rec := PluginRecord{
		Name: "presence-hook", Version: "1.0.0", Config: json.RawMessage(`{"url":"https://example.test/hook"}`),
		Capabilities: []string{"log", "webhook"}, Order: 2,
	}
	if err := f.s.PutPlugin(ctx, rec, module); err != nil {
		t.Fatal(err)
	}
	rec2 := rec
	rec2.Name, rec2.Order = "same-bytes", 1
	if err := c.nodes[0].s.PutPlugin(ctx, rec2, module); err != nil {
		t.Fatal(err)
	}
	c.converged(15 * time.Second)
	for _, nd := range c.nodes {
		ps := nd.s.Plugins()
		if len(ps) != 2 || ps[0].Name != "same-bytes" || ps[1].Name != "presence-hook" {
			t.Fatalf("%s plugins = %+v", nd.id, ps)
		}
		if ps[1].SHA256 != digest || ps[1].Version != "1.0.0" || string(ps[1].Config) != string(rec.Config) {
			t.Fatalf("%s plugin = %+v", nd.id, ps[1])
		}
		b, ok := nd.s.Module(digest)
		if !ok || !bytes.Equal(b, module) {
			t.Fatalf("%s module missing or different", nd.id)
		}
		var modules int
		nd.s.fsm.read(func(st *state) { modules = len(st.Modules) })
		if modules != 1 {
			t.Fatalf("%s stores %d modules, want 1", nd.id, modules)
		}
	}
	if err := f.s.PutPlugin(ctx, PluginRecord{Name: "bad", SHA256: hex.EncodeToString(make([]byte, 32))}, module); !errors.Is(err, ErrChecksum) {
		t.Fatalf("wrong digest: %v", err)
	}
	for _, name := range []string{"same-bytes", "presence-hook"} {
		if err := f.s.DeletePlugin(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.s.Module(digest); ok || len(f.s.Plugins()) != 0 {
		t.Fatal("module kept after its plugins were deleted")
	}
}

func TestJoinAndRemove(t *testing.T) {
	c := newCluster(t, 3, nil)
	ln, addr := listenLoopback(t)
	cfg := c.config("n4", addr, t.TempDir(), nil)
	cfg.Join = []string{c.nodes[1].addr, c.nodes[2].addr}
	cfg.Listener = ln
	nd := &testNode{id: "n4", addr: addr, cfg: cfg}
	c.nodes = append(c.nodes, nd)
	c.start(nd)
	c.waitReady(nd)
	l := c.leader(15 * time.Second)
	eventually(t, 15*time.Second, "n4 a voter", func() bool {
		for _, n := range l.s.Status().Nodes {
			if n.ID == "n4" && n.Suffrage == "Voter" && n.Registered {
				return true
			}
		}
		return false
	})
	if _, err := nd.s.ClaimRoom(ctxT(t, 10*time.Second), "n4-room", ""); err != nil {
		t.Fatal(err)
	}
	// Remove it through a follower.
	if err := c.followers()[0].s.RemoveNode(ctxT(t, 10*time.Second), "n4"); err != nil {
		t.Fatal(err)
	}
	c.stop(nd)
	eventually(t, 15*time.Second, "n4 gone everywhere", func() bool {
		for _, x := range c.running() {
			if _, ok := x.s.Node("n4"); ok {
				return false
			}
			if _, ok := x.s.Room("n4-room"); ok {
				return false
			}
			if len(x.s.Status().Nodes) != 3 {
				return false
			}
		}
		return true
	})
}
