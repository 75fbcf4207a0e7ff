package room

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/sfu"
)

// fakeCluster is an in-memory core.ClusterState: claims are compare-and-set
// with increasing epochs; release can be held to test ordering.
type fakeCluster struct {
	mu        sync.Mutex
	local     string
	rooms     map[string]core.RoomClaim
	nodes     map[string]core.ClusterNode
	next      uint64
	claims    int
	released  []uint64
	holdRel   chan struct{} // when set, ReleaseRoom waits for it
	claimErr  error
	releaseCh chan struct{} // signalled after each release
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{
		local: "a", rooms: map[string]core.RoomClaim{}, releaseCh: make(chan struct{}, 16),
		nodes: map[string]core.ClusterNode{
			"a": {ID: "a", PublicURL: "ws://a/v1/signal"},
			"b": {ID: "b", PublicURL: "ws://b/v1/signal"},
		},
	}
}

func (f *fakeCluster) LocalNode() string { return f.local }

func (f *fakeCluster) ClaimRoom(_ context.Context, room, metadata string) (core.RoomClaim, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	if f.claimErr != nil {
		return core.RoomClaim{}, f.claimErr
	}
	if c, ok := f.rooms[room]; ok {
		return c, nil
	}
	f.next++
	c := core.RoomClaim{Room: room, Owner: f.local, OwnerURL: f.nodes[f.local].PublicURL, Epoch: f.next, Metadata: metadata}
	f.rooms[room] = c
	return c, nil
}

func (f *fakeCluster) ReleaseRoom(_ context.Context, room string, epoch uint64) error {
	f.mu.Lock()
	hold := f.holdRel
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.rooms[room]; ok && c.Owner == f.local && c.Epoch == epoch {
		delete(f.rooms, room)
	}
	f.released = append(f.released, epoch)
	f.releaseCh <- struct{}{}
	return nil
}

func (f *fakeCluster) RecordPresence(context.Context, ...core.PresenceChange) error { return nil }

func (f *fakeCluster) Room(room string) (core.RoomClaim, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.rooms[room]
	return c, ok
}

func (f *fakeCluster) Node(id string) (core.ClusterNode, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[id]
	return n, ok
}

func (f *fakeCluster) Nodes() []core.ClusterNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []core.ClusterNode{f.nodes["a"], f.nodes["b"]}
}

// recSink records what the room tells one participant.
type recSink struct {
	mu      sync.Mutex
	removed []string
}

func (s *recSink) Send(string, any) {}
func (s *recSink) Removed(reason string) {
	s.mu.Lock()
	s.removed = append(s.removed, reason)
	s.mu.Unlock()
}

func newClusterManager(t *testing.T, fc *fakeCluster) *Manager {
	t.Helper()
	mc := sfu.DefaultConfig()
	mc.MediaPort = 0
	eng, err := sfu.New(mc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	m, err := NewManager(DefaultConfig(), Deps{Engine: eng, Cluster: fc})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func join(t *testing.T, m *Manager, room, identity string) (*Participant, *recSink, error) {
	t.Helper()
	s := &recSink{}
	p, err := m.Join(context.Background(), core.Claims{Identity: identity, Room: room, Grants: core.Grants{CanPublish: true}}, JoinOptions{}, s)
	return p, s, err
}

func waitRelease(t *testing.T, fc *fakeCluster) {
	t.Helper()
	select {
	case <-fc.releaseCh:
	case <-time.After(5 * time.Second):
		t.Fatal("claim not released")
	}
}

// A room is claimed once however many join it, and released with its
// epoch when the last one leaves.
func TestClaimOnceReleaseWhenEmpty(t *testing.T) {
	fc := newFakeCluster()
	m := newClusterManager(t, fc)
	p1, _, err := join(t, m, "r", "alice")
	if err != nil {
		t.Fatal(err)
	}
	p2, _, err := join(t, m, "r", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if fc.claims != 1 {
		t.Fatalf("%d claims for one room", fc.claims)
	}
	p1.Leave(ReasonLeave)
	p2.Leave(ReasonLeave)
	waitRelease(t, fc)
	if len(fc.released) != 1 || fc.released[0] != 1 {
		t.Fatalf("released epochs %v, want [1]", fc.released)
	}
}

// A room another node owns is answered with a redirect to its URL.
func TestJoinRedirectsToOwner(t *testing.T) {
	fc := newFakeCluster()
	fc.rooms["r"] = core.RoomClaim{Room: "r", Owner: "b", Epoch: 7}
	m := newClusterManager(t, fc)
	_, _, err := join(t, m, "r", "alice")
	if core.CodeOf(err) != core.CodeRedirect || core.RedirectURL(err) != "ws://b/v1/signal" {
		t.Fatalf("join of b's room: %v (url %q)", err, core.RedirectURL(err))
	}
	if len(m.Rooms()) != 0 {
		t.Fatalf("rooms kept after a redirect: %v", m.Rooms())
	}
	fc.claimErr = &core.Error{Code: core.CodeUnavailable, Message: "no leader"}
	if _, _, err := join(t, m, "other", "alice"); core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("join without a leader: %v", err)
	}
}

// A room that empties and is joined again at once is claimed again only
// after its release: a late release never drops the new claim.
func TestReclaimWaitsForRelease(t *testing.T) {
	fc := newFakeCluster()
	m := newClusterManager(t, fc)
	p, _, err := join(t, m, "r", "alice")
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	fc.mu.Lock()
	fc.holdRel = hold
	fc.mu.Unlock()
	p.Leave(ReasonLeave)
	joined := make(chan error, 1)
	go func() {
		_, _, err := join(t, m, "r", "bob")
		joined <- err
	}()
	select {
	case err := <-joined:
		t.Fatalf("join finished before the release: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(hold)
	waitRelease(t, fc)
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if c, ok := fc.Room("r"); !ok || c.Epoch != 2 {
		t.Fatalf("claim after the reclaim: %+v %v", c, ok)
	}
	if got := m.ClaimedRooms(); got["r"] != 2 {
		t.Fatalf("claimed rooms: %v", got)
	}
}

// Evict moves the participants of a room whose claim the cluster took
// away, telling them where to go; a different epoch is left alone.
func TestEvictMovesParticipants(t *testing.T) {
	fc := newFakeCluster()
	m := newClusterManager(t, fc)
	p, s, err := join(t, m, "r", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Evict("r", 99, "ws://b/v1/signal"); n != 0 || p.Left() {
		t.Fatalf("evict of another epoch moved %d", n)
	}
	if n := m.Evict("r", 1, "ws://b/v1/signal"); n != 1 {
		t.Fatalf("evict moved %d participants, want 1", n)
	}
	if !p.Left() || p.MovedTo() != "ws://b/v1/signal" || len(s.removed) != 1 || s.removed[0] != ReasonMoved {
		t.Fatalf("participant after evict: left %v, moved to %q, removed %v", p.Left(), p.MovedTo(), s.removed)
	}
	select {
	case <-fc.releaseCh:
		t.Fatal("an evicted room's lost claim was released")
	case <-time.After(50 * time.Millisecond):
	}
}

// A draining node releases its rooms, moves their participants to another
// node and redirects later joins there.
func TestDrainHandsRoomsOver(t *testing.T) {
	fc := newFakeCluster()
	m := newClusterManager(t, fc)
	p, _, err := join(t, m, "r", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Drain(context.Background()); n != 1 {
		t.Fatalf("drain moved %d", n)
	}
	if p.MovedTo() != "ws://b/v1/signal" {
		t.Fatalf("moved to %q", p.MovedTo())
	}
	if _, ok := fc.Room("r"); ok {
		t.Fatal("room still claimed after the drain")
	}
	_, _, err = join(t, m, "new", "bob")
	if core.RedirectURL(err) != "ws://b/v1/signal" {
		t.Fatalf("join while draining: %v", err)
	}
	if !errors.Is(err, &core.Error{Code: core.CodeRedirect}) {
		t.Fatalf("not a redirect: %v", err)
	}
}

// A created room is claimed in the cluster while empty, with its
// metadata, and released when closed; another node's room is a redirect.
func TestCreateRoomClaims(t *testing.T) {
	fc := newFakeCluster()
	m := newClusterManager(t, fc)
	if _, err := m.CreateRoom(t.Context(), "r", RoomOptions{Metadata: "meta"}); err != nil {
		t.Fatal(err)
	}
	if c, ok := fc.Room("r"); !ok || c.Owner != "a" || c.Metadata != "meta" {
		t.Fatalf("created room not claimed: %+v %v", c, ok)
	}
	if got := m.ClaimedRooms(); got["r"] == 0 {
		t.Fatalf("claimed rooms %v", got)
	}
	if err := m.CloseRoom(t.Context(), "r", ""); err != nil {
		t.Fatal(err)
	}
	waitRelease(t, fc)
	if _, ok := fc.Room("r"); ok {
		t.Fatal("closed room still claimed")
	}
	fc.rooms["b-room"] = core.RoomClaim{Room: "b-room", Owner: "b", Epoch: 9}
	if _, err := m.CreateRoom(t.Context(), "b-room", RoomOptions{}); core.RedirectURL(err) != "ws://b/v1/signal" {
		t.Fatalf("creating b's room: %v", err)
	}
}
