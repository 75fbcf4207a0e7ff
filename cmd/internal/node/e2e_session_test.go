package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// joinRaw joins room as identity on a fresh raw connection.
func joinRaw(t *testing.T, n *node.Node, room, identity string) (*rawWS, protocol.JoinResponse) {
	t.Helper()
	tok, err := n.MintToken(room, identity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, n.SignalURL())
	r.request("join", protocol.TypeJoin, protocol.JoinRequest{Token: tok})
	m := r.response("join")
	if m.Err() != nil {
		t.Fatalf("join %s: %v", identity, m.Err())
	}
	var jr protocol.JoinResponse
	if err := protocol.DecodeData(&m, &jr); err != nil {
		t.Fatal(err)
	}
	return r, jr
}

// nextEvent skips messages until an event of type typ arrives.
func (r *rawWS) nextEvent(typ string) protocol.Message {
	r.t.Helper()
	return r.nextEventWithin(typ, 5*time.Second)
}

// nextEventWithin is nextEvent with an overall deadline.
func (r *rawWS) nextEventWithin(typ string, d time.Duration) protocol.Message {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, ok := r.nextBefore(deadline)
		if !ok {
			r.t.Fatalf("connection closed while waiting for %s", typ)
		}
		if !m.IsResponse() && m.Type == typ {
			return m
		}
	}
}

func TestResumeWithinGrace(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Signal.ResumeGrace = 3 * time.Second })
	alice, ja := joinRaw(t, n, "r", "alice")
	bob, _ := joinRaw(t, n, "r", "bob")
	alice.nextEvent(protocol.TypeParticipantJoined)

	// alice's socket drops; bob sends her data while she is detached; she
	// resumes and gets both a snapshot and the held message.
	alice.ws.CloseNow()
	eventually(t, 2*time.Second, "server notices the drop", func() bool { return n.SignalStats().Detached == 1 })
	bob.request("d", protocol.TypeData, protocol.DataRequest{Payload: mustJSON(map[string]string{"hi": "alice"})})
	if m := bob.response("d"); m.Err() != nil {
		t.Fatal(m.Err())
	}

	r := dialRaw(t, n.SignalURL())
	r.request("res", protocol.TypeResume, protocol.ResumeRequest{SessionID: ja.Session.ID, ResumeToken: ja.Session.ResumeToken})
	m := r.response("res")
	if m.Err() != nil {
		t.Fatalf("resume: %v", m.Err())
	}
	var jr protocol.JoinResponse
	protocol.DecodeData(&m, &jr)
	if jr.Participant.ID != ja.Participant.ID {
		t.Fatalf("resumed as %s, was %s", jr.Participant.ID, ja.Participant.ID)
	}
	if len(jr.Room.Participants) != 1 || jr.Room.Participants[0].Identity != "bob" {
		t.Fatalf("snapshot after resume: %+v", jr.Room.Participants)
	}
	ev := r.nextEvent(protocol.TypeData)
	var d protocol.DataEvent
	protocol.DecodeData(&ev, &d)
	if d.FromIdentity != "bob" || string(d.Payload) != `{"hi":"alice"}` {
		t.Fatalf("data held across the resume: %+v", d)
	}

	// A wrong resume token is refused without disturbing the session.
	bad := dialRaw(t, n.SignalURL())
	bad.request("x", protocol.TypeResume, protocol.ResumeRequest{SessionID: ja.Session.ID, ResumeToken: "wrong"})
	if m := bad.response("x"); !errors.Is(m.Err(), core.ErrSessionExpired) {
		t.Fatalf("wrong resume token: %v", m.Err())
	}
	r.request("p", protocol.TypePing, nil)
	if m := r.response("p"); m.Err() != nil {
		t.Fatalf("resumed session broken by a bad resume attempt: %v", m.Err())
	}
}

func TestGraceExpiryRemovesParticipant(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Signal.ResumeGrace = 300 * time.Millisecond })
	alice, _ := joinRaw(t, n, "g", "alice")
	bob, jb := joinRaw(t, n, "g", "bob")
	alice.nextEvent(protocol.TypeParticipantJoined)
	start := time.Now()
	bob.ws.CloseNow()
	ev := alice.nextEvent(protocol.TypeParticipantLeft)
	var left protocol.ParticipantLeft
	protocol.DecodeData(&ev, &left)
	if left.Identity != "bob" || left.Reason != "disconnected" {
		t.Fatalf("left event %+v", left)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("removed after %s, grace is 300ms", d)
	}
	r := dialRaw(t, n.SignalURL())
	r.request("res", protocol.TypeResume, protocol.ResumeRequest{SessionID: jb.Session.ID, ResumeToken: jb.Session.ResumeToken})
	if m := r.response("res"); !errors.Is(m.Err(), core.ErrSessionExpired) {
		t.Fatalf("resume after grace: %v", m.Err())
	}
}

func TestSameIdentityReplacesOldSession(t *testing.T) {
	n := newNode(t, nil)
	old, _ := joinRaw(t, n, "dup", "carol")
	watcher, _ := joinRaw(t, n, "dup", "dave")
	joinRaw(t, n, "dup", "carol")
	ev := old.nextEvent(protocol.TypeClosing)
	var c protocol.Closing
	protocol.DecodeData(&ev, &c)
	if c.Code != core.CodeSessionExpired {
		t.Fatalf("old session closing %+v", c)
	}
	lv := watcher.nextEvent(protocol.TypeParticipantLeft)
	var left protocol.ParticipantLeft
	protocol.DecodeData(&lv, &left)
	if left.Identity != "carol" || left.Reason != "replaced" {
		t.Fatalf("left %+v", left)
	}
	if got := n.Rooms().Rooms(); len(got) != 1 || got[0].Participants != 2 {
		t.Fatalf("rooms %+v", got)
	}
}

func TestLeaveAndRoomCleanup(t *testing.T) {
	n := newNode(t, nil)
	a, _ := joinRaw(t, n, "tidy", "a")
	a.request("l", protocol.TypeLeave, nil)
	if m := a.response("l"); m.Err() != nil {
		t.Fatal(m.Err())
	}
	if _, ok := a.next(); ok {
		t.Fatal("connection open after leave")
	}
	eventually(t, 2*time.Second, "room removed", func() bool { return len(n.Rooms().Rooms()) == 0 })
}

func TestRoomFull(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Room.MaxParticipants = 2 })
	joinRaw(t, n, "small", "a")
	joinRaw(t, n, "small", "b")
	tok, _ := n.MintToken("small", "c", time.Hour)
	r := dialRaw(t, n.SignalURL())
	r.request("j", protocol.TypeJoin, protocol.JoinRequest{Token: tok})
	if m := r.response("j"); !errors.Is(m.Err(), core.ErrRoomFull) {
		t.Fatalf("third join: %v", m.Err())
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Signal.PingInterval = 100 * time.Millisecond })
	a, _ := joinRaw(t, n, "idle", "a")
	start := time.Now()
	ev := a.nextEvent(protocol.TypeClosing)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle close after %s", d)
	}
	var c protocol.Closing
	protocol.DecodeData(&ev, &c)
	if c.Code != core.CodeTimeout {
		t.Fatalf("idle closing %+v", c)
	}
}
