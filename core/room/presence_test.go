package room

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
)

// describe renders presence events compactly for comparison.
func describe(evs []core.PresenceEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		s := string(ev.Kind)
		if ev.Identity != "" {
			s += " " + ev.Identity
		}
		if ev.TrackKind != "" {
			s += " " + string(ev.TrackKind)
		}
		if ev.Reason != "" {
			s += " (" + ev.Reason + ")"
		}
		out[i] = s
	}
	return out
}

func expectPresence(t *testing.T, log *presenceLog, want ...string) []core.PresenceEvent {
	t.Helper()
	var evs []core.PresenceEvent
	eventually(t, 10*time.Second, "presence events", func() bool {
		evs = log.events()
		return len(evs) >= len(want)
	})
	time.Sleep(50 * time.Millisecond) // nothing more arrives
	evs = log.events()
	if got := describe(evs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("presence events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return evs
}

// The presence events of a real call arrive in the order the changes took
// effect: the room starts first, a leaving participant's tracks go before
// it, and the room finishes last, with every field set.
func TestPresenceOrderOfACall(t *testing.T) {
	log := &presenceLog{}
	m := newTestManager(t, log, nil)
	alice := joinPeer(t, m, "call", "alice", core.AllGrants)
	video := alice.publish(webrtc.MimeTypeVP8)
	bob := joinPeer(t, m, "call", "bob", core.AllGrants)
	bob.flowing(video)
	audio := bob.publish(webrtc.MimeTypeOpus)
	alice.flowing(audio)
	if err := alice.p.Unpublish(video); err != nil {
		t.Fatal(err)
	}
	bob.p.Leave(ReasonLeave)
	alice.p.Leave(ReasonDisconnected)

	evs := expectPresence(t, log,
		"room_started",
		"joined alice",
		"track_published alice video",
		"joined bob",
		"track_published bob audio",
		"track_unpublished alice video",
		"track_unpublished bob audio",
		"left bob (leave)",
		"left alice (disconnected)",
		"room_finished (empty)",
	)
	for i, ev := range evs {
		if ev.Room != "call" || ev.Node != "NO_test" || ev.At.IsZero() {
			t.Errorf("event %d lacks room, node or time: %+v", i, ev)
		}
		if ev.Identity != "" && !strings.HasPrefix(ev.ParticipantID, core.PrefixParticipant) {
			t.Errorf("event %d lacks the participant id: %+v", i, ev)
		}
	}
	if evs[2].TrackID != video || evs[5].TrackID != video || evs[4].TrackID != audio || evs[6].TrackID != audio {
		t.Errorf("track ids: %q %q %q %q, want %s and %s", evs[2].TrackID, evs[5].TrackID, evs[4].TrackID, evs[6].TrackID, video, audio)
	}
	if evs[3].ParticipantID != bob.p.ID() || evs[7].ParticipantID != bob.p.ID() || evs[6].ParticipantID != bob.p.ID() {
		t.Errorf("bob's events name other participants: %+v", evs[3:8])
	}
}

// Closing a room removes everyone with reason room_closed (their clients
// are told, with the operator's words), unpublishes their tracks first,
// finishes the room with reason closed, and a later join starts it anew.
func TestCloseRoom(t *testing.T) {
	log := &presenceLog{}
	m := newTestManager(t, log, nil)
	alice := joinPeer(t, m, "r", "alice", core.AllGrants)
	alice.publish(webrtc.MimeTypeVP8)
	bob := joinPeer(t, m, "r", "bob", core.AllGrants)
	if err := m.CloseRoom(t.Context(), "r", "maintenance"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testPeer{alice, bob} {
		if got := c.removedWith(); len(got) != 1 || got[0] != ReasonRoomClosed || c.p.RemovalDetail() != "maintenance" {
			t.Fatalf("%s removed with %v, detail %q", c.identity, got, c.p.RemovalDetail())
		}
	}
	if _, ok := m.Room("r"); ok {
		t.Fatal("closed room still listed")
	}
	if err := m.CloseRoom(t.Context(), "r", ""); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("closing a closed room: %v", err)
	}
	evs := log.events()
	got := describe(evs)
	if got[len(got)-1] != "room_finished (closed)" || !contains(got, "track_unpublished alice video") {
		t.Fatalf("presence after close: %v", got)
	}
	if idx(got, "track_unpublished alice video") > idx(got, "left alice (room_closed)") {
		t.Fatalf("track unpublished after its owner left: %v", got)
	}
	joinPeer(t, m, "r", "carol", core.AllGrants)
	if got := describe(log.events()); got[len(got)-2] != "room_started" {
		t.Fatalf("rejoined room did not start again: %v", got)
	}
}

func contains(s []string, v string) bool { return idx(s, v) >= 0 }

func idx(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// A created room exists empty until its empty timeout passes with nobody
// in it; a participant leaving restarts the timeout.
func TestCreatedRoomEmptyTimeout(t *testing.T) {
	log := &presenceLog{}
	m := newTestManager(t, log, nil)
	info, err := m.CreateRoom(t.Context(), "r", RoomOptions{EmptyTimeout: 300 * time.Millisecond, Metadata: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "r" || info.Metadata != "m" || info.Participants != 0 || info.Created.IsZero() || info.MaxParticipants != 100 {
		t.Fatalf("info %+v", info)
	}
	alice := joinPeer(t, m, "r", "alice", core.AllGrants)
	time.Sleep(400 * time.Millisecond)
	alice.p.Leave(ReasonLeave)
	if _, ok := m.Room("r"); !ok {
		t.Fatal("created room removed as soon as it emptied")
	}
	left := time.Now()
	eventually(t, 5*time.Second, "the room to time out", func() bool { _, ok := m.Room("r"); return !ok })
	if waited := time.Since(left); waited < 250*time.Millisecond {
		t.Fatalf("room removed %s after it emptied; timeout is 300ms", waited)
	}
	evs := expectPresence(t, log, "room_started", "joined alice", "left alice (leave)", "room_finished (empty)")
	if evs[0].Metadata != "m" {
		t.Fatalf("room_started metadata %q", evs[0].Metadata)
	}
}

// CreateRoom is idempotent with the same options and a conflict with
// others; bad options are refused; MaxParticipants is enforced.
func TestCreateRoomOptions(t *testing.T) {
	m := newTestManager(t, nil, nil)
	opts := RoomOptions{MaxParticipants: 2, Metadata: "x"}
	if _, err := m.CreateRoom(t.Context(), "r", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateRoom(t.Context(), "r", opts); err != nil {
		t.Fatalf("same options again: %v", err)
	}
	info, err := m.CreateRoom(t.Context(), "r", RoomOptions{MaxParticipants: 3})
	if core.CodeOf(err) != core.CodeConflict || info.MaxParticipants != 2 {
		t.Fatalf("other options: %v, info %+v", err, info)
	}
	for _, bad := range []struct {
		name string
		opts RoomOptions
	}{
		{"", RoomOptions{}},
		{"a\nb", RoomOptions{}},
		{strings.Repeat("x", MaxRoomNameLength+1), RoomOptions{}},
		{"r2", RoomOptions{MaxParticipants: -1}},
		{"r2", RoomOptions{MaxParticipants: 101}},
		{"r2", RoomOptions{Metadata: strings.Repeat("x", MaxRoomMetadata+1)}},
		{"r2", RoomOptions{EmptyTimeout: -time.Second}},
	} {
		if _, err := m.CreateRoom(t.Context(), bad.name, bad.opts); core.CodeOf(err) != core.CodeBadRequest {
			t.Errorf("CreateRoom(%.20q, %+v): %v, want bad_request", bad.name, bad.opts, err)
		}
	}
	joinPeer(t, m, "r", "a", core.AllGrants)
	joinPeer(t, m, "r", "b", core.AllGrants)
	if _, err := tryJoin(t, m, "r", "c", core.AllGrants); core.CodeOf(err) != core.CodeRoomFull {
		t.Fatalf("third join of a room of 2: %v", err)
	}
	// A room made by a join has the default options.
	joinPeer(t, m, "j", "a", core.AllGrants)
	if _, err := m.CreateRoom(t.Context(), "j", RoomOptions{}); err != nil {
		t.Fatalf("creating a joined room with default options: %v", err)
	}
	if got := m.RoomInfos(); len(got) != 2 || got[0].Name != "j" || got[1].Name != "r" || got[1].Participants != 2 {
		t.Fatalf("room infos %+v", got)
	}
}

// A draining node without a cluster sends its clients away to join again
// where they first connected, finishes its rooms and refuses new ones.
func TestDrainSingleNode(t *testing.T) {
	log := &presenceLog{}
	m := newTestManager(t, log, nil)
	alice := joinPeer(t, m, "r", "alice", core.AllGrants)
	if _, err := m.CreateRoom(t.Context(), "empty", RoomOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := m.Drain(t.Context()); n != 1 {
		t.Fatalf("drain moved %d", n)
	}
	if got := alice.removedWith(); len(got) != 1 || got[0] != ReasonMoved || alice.p.MovedTo() != "" {
		t.Fatalf("alice removed with %v to %q", got, alice.p.MovedTo())
	}
	if _, err := tryJoin(t, m, "r", "bob", core.AllGrants); core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("join while draining: %v", err)
	}
	if _, err := m.CreateRoom(t.Context(), "new", RoomOptions{}); core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("create while draining: %v", err)
	}
	if got := m.RoomInfos(); len(got) != 0 {
		t.Fatalf("rooms after the drain: %+v", got)
	}
	got := describe(log.events())
	if n := strings.Count(fmt.Sprint(got), "room_finished (moved)"); n != 2 {
		t.Fatalf("presence after the drain: %v", got)
	}
}

// Participants joining and leaving one room concurrently, so that it
// empties and starts again many times, yield presence events whose order
// is always consistent: the room started before anyone joins, each
// participant joined before it left, the room finishes empty and starts
// again before the next join.
func TestPresenceOrderUnderChurn(t *testing.T) {
	log := &presenceLog{}
	m := newTestManager(t, log, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 10 {
				c, err := tryJoin(t, m, "churn", fmt.Sprintf("p%d-%d", i, j), core.Grants{CanPublishData: true})
				if err != nil {
					t.Errorf("join: %v", err)
					return
				}
				// Stay and be away for random moments: the room is sometimes
				// shared, sometimes empty.
				time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
				c.p.Leave(ReasonLeave)
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	m.flushPresence()
	started, present, cycles := false, map[string]bool{}, 0
	for i, ev := range log.events() {
		switch ev.Kind {
		case core.PresenceRoomStarted:
			if started {
				t.Fatalf("event %d: room started twice", i)
			}
			started = true
			cycles++
		case core.PresenceJoined:
			if !started || present[ev.ParticipantID] {
				t.Fatalf("event %d: %s joined (started %v, present %v)", i, ev.Identity, started, present[ev.ParticipantID])
			}
			present[ev.ParticipantID] = true
		case core.PresenceLeft:
			if !present[ev.ParticipantID] {
				t.Fatalf("event %d: %s left without joining", i, ev.Identity)
			}
			delete(present, ev.ParticipantID)
		case core.PresenceRoomFinished:
			if !started || len(present) != 0 {
				t.Fatalf("event %d: room finished (started %v) with %d present", i, started, len(present))
			}
			started = false
		}
	}
	if started || cycles == 0 {
		t.Fatalf("room still started at the end, or never: %d cycles", cycles)
	}
	t.Logf("%d room cycles", cycles)
}
