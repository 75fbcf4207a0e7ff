package room

import (
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// startCall joins alice, who publishes VP8, and bob, who receives it.
func startCall(t *testing.T, m *Manager, room string) (alice, bob *testPeer, track string) {
	t.Helper()
	alice = joinPeer(t, m, room, "alice", core.AllGrants)
	track = alice.publish(webrtc.MimeTypeVP8)
	bob = joinPeer(t, m, room, "bob", core.AllGrants)
	bob.flowing(track)
	return alice, bob, track
}

// A kicked participant is gone: its client is told why, the others see it
// leave with reason kicked after its tracks were unpublished, and its
// media stops at the subscriber.
func TestRemoveParticipant(t *testing.T) {
	log := &presenceLog{}
	m := newTestManager(t, log, nil)
	alice, bob, track := startCall(t, m, "r")
	if err := m.RemoveParticipant(t.Context(), "r", "PA_nobody", ""); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("remove unknown: %v", err)
	}
	if err := m.RemoveParticipant(t.Context(), "nowhere", alice.p.ID(), ""); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("remove from unknown room: %v", err)
	}
	if err := m.RemoveParticipant(t.Context(), "r", alice.p.ID(), "spam"); err != nil {
		t.Fatal(err)
	}
	if got := alice.removedWith(); len(got) != 1 || got[0] != ReasonKicked || alice.p.RemovalDetail() != "spam" {
		t.Fatalf("alice removed with %v, detail %q", got, alice.p.RemovalDetail())
	}
	bob.waitEvent(protocol.TypeTrackUnpublished, func(d any) bool { return d.(protocol.TrackUnpublished).TrackID == track })
	left := bob.waitEvent(protocol.TypeParticipantLeft, nil).(protocol.ParticipantLeft)
	if left.ParticipantID != alice.p.ID() || left.Reason != ReasonKicked {
		t.Fatalf("bob saw %+v", left)
	}
	ps, err := m.Participants("r")
	if err != nil || len(ps) != 1 || ps[0].Identity != "bob" {
		t.Fatalf("participants after the kick: %+v %v", ps, err)
	}
	if _, err := m.Participant("r", alice.p.ID()); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("kicked participant still found: %v", err)
	}
	bob.stopped(track)
	got := describe(log.events())
	if i, j := idx(got, "track_unpublished alice video"), idx(got, "left alice (kicked)"); i < 0 || j < i {
		t.Fatalf("presence: %v", got)
	}
}

// Participants and Participant describe who is there, with grants, join
// time and published tracks.
func TestParticipantInfo(t *testing.T) {
	m := newTestManager(t, nil, nil)
	alice, _, track := startCall(t, m, "r")
	if _, err := m.Participants("nowhere"); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("participants of unknown room: %v", err)
	}
	ps, err := m.Participants("r")
	if err != nil || len(ps) != 2 || ps[0].Identity != "alice" || ps[1].Identity != "bob" {
		t.Fatalf("participants %+v %v", ps, err)
	}
	a, err := m.Participant("r", alice.p.ID())
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != alice.p.ID() || a.Grants != core.AllGrants || a.Joined.IsZero() || len(a.Tracks) != 1 ||
		a.Tracks[0].ID != track || a.Tracks[0].Kind != core.KindVideo || a.Tracks[0].Muted {
		t.Fatalf("alice %+v", a)
	}
	info, ok := m.Room("r")
	if !ok || info.Participants != 2 || len(info.Tracks) != 1 || info.Tracks[0].ID != track {
		t.Fatalf("room info %+v %v", info, ok)
	}
}

// Revoking can_publish stops the media at the subscriber at once and
// tells everyone; granting it again publishes the track again. Revoking
// can_subscribe drops subscriptions, revoking can_publish_data refuses
// data; the client learns its grants from a permissions event.
func TestUpdateGrants(t *testing.T) {
	log := &presenceLog{}
	m := newTestManager(t, log, nil)
	alice, bob, track := startCall(t, m, "r")
	noPublish := core.Grants{CanSubscribe: true, CanPublishData: true}
	if err := m.UpdateGrants(t.Context(), "r", alice.p.ID(), noPublish); err != nil {
		t.Fatal(err)
	}
	perm := alice.waitEvent(protocol.TypePermissions, nil).(protocol.Permissions)
	if perm.Grants != noPublish || alice.p.Grants() != noPublish {
		t.Fatalf("permissions event %+v, grants %+v", perm, alice.p.Grants())
	}
	bob.waitEvent(protocol.TypeTrackUnpublished, func(d any) bool { return d.(protocol.TrackUnpublished).TrackID == track })
	bob.stopped(track)
	if _, err := alice.p.Publish(t.Context(), protocol.SDP{Type: "offer", SDP: "v=0"}); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("publish after revoke: %v", err)
	}
	if info, _ := m.Participant("r", alice.p.ID()); len(info.Tracks) != 0 {
		t.Fatalf("revoked tracks still listed: %+v", info.Tracks)
	}

	if err := m.UpdateGrants(t.Context(), "r", alice.p.ID(), core.AllGrants); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent(protocol.TypeTrackPublished, func(d any) bool { return d.(core.TrackInfo).ID == track })
	bob.flowing(track)

	// bob: no subscribing, no data.
	if err := m.UpdateGrants(t.Context(), "r", bob.p.ID(), core.Grants{}); err != nil {
		t.Fatal(err)
	}
	bob.stopped(track)
	if err := bob.p.SendData("", mustJSON("hi")); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("data after revoke: %v", err)
	}
	if err := bob.p.Subscribe(t.Context(), []string{track}); core.CodeOf(err) != core.CodeForbidden {
		t.Fatalf("subscribe after revoke: %v", err)
	}
	if err := m.UpdateGrants(t.Context(), "r", "PA_nobody", core.AllGrants); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("update unknown: %v", err)
	}
	got := describe(log.events())
	if n := count(got, "track_unpublished alice video"); n != 1 || count(got, "track_published alice video") != 2 {
		t.Fatalf("presence: %v", got)
	}
}

// A participant that joined without can_subscribe starts receiving once
// it is granted.
func TestGrantSubscribeLater(t *testing.T) {
	m := newTestManager(t, nil, nil)
	alice := joinPeer(t, m, "r", "alice", core.AllGrants)
	track := alice.publish(webrtc.MimeTypeVP8)
	bob := joinPeer(t, m, "r", "bob", core.Grants{CanPublishData: true})
	if err := m.UpdateGrants(t.Context(), "r", bob.p.ID(), core.AllGrants); err != nil {
		t.Fatal(err)
	}
	bob.flowing(track)
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// A muted track delivers no packets; everyone is told; unmuting resumes
// from a keyframe the publisher is asked for.
func TestMuteTrack(t *testing.T) {
	m := newTestManager(t, nil, nil)
	alice, bob, track := startCall(t, m, "r")
	if err := m.MuteTrack(t.Context(), "r", alice.p.ID(), track, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testPeer{alice, bob} {
		ev := c.waitEvent(protocol.TypeTrackMuted, nil).(protocol.TrackMuted)
		if ev.TrackID != track || ev.ParticipantID != alice.p.ID() || !ev.Muted {
			t.Fatalf("%s got %+v", c.identity, ev)
		}
	}
	bob.stopped(track)
	if info, _ := m.Participant("r", alice.p.ID()); !info.Tracks[0].Muted {
		t.Fatalf("muted track not reported muted: %+v", info.Tracks)
	}
	if snap := bob.p.Snapshot(); len(snap.Participants) != 1 || len(snap.Participants[0].MutedTracks) != 1 {
		t.Fatalf("snapshot does not list the muted track: %+v", snap)
	}
	if err := m.MuteTrack(t.Context(), "r", alice.p.ID(), track, true); err != nil {
		t.Fatalf("muting again: %v", err)
	}
	plis := alice.plis.Load()
	if err := m.MuteTrack(t.Context(), "r", alice.p.ID(), track, false); err != nil {
		t.Fatal(err)
	}
	bob.flowing(track)
	if alice.plis.Load() == plis {
		t.Fatal("unmute did not ask the publisher for a keyframe")
	}
	if n := len(bob.eventsOf(protocol.TypeTrackMuted)); n != 2 {
		t.Fatalf("bob got %d track_muted events, want 2", n)
	}
	if err := m.MuteTrack(t.Context(), "r", alice.p.ID(), "TR_nope", true); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("mute unknown track: %v", err)
	}
	if err := m.MuteTrack(t.Context(), "r", bob.p.ID(), track, true); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("mute someone else's track: %v", err)
	}
}

// A data message from the server reaches only the participants named, or
// everyone; bad payloads and unknown targets are refused.
func TestServerSendData(t *testing.T) {
	m := newTestManager(t, nil, nil)
	a := joinPeer(t, m, "r", "a", core.AllGrants)
	b := joinPeer(t, m, "r", "b", core.AllGrants)
	c := joinPeer(t, m, "r", "c", core.AllGrants)
	n, err := m.SendData(t.Context(), "r", []string{b.p.ID(), "PA_gone"}, mustJSON(map[string]int{"x": 1}))
	if err != nil || n != 1 {
		t.Fatalf("send to b: %d %v", n, err)
	}
	ev := b.waitEvent(protocol.TypeData, nil).(protocol.DataEvent)
	if ev.From != protocol.ServerSender || ev.FromIdentity != "" || ev.To != b.p.ID() || string(ev.Payload) != `{"x":1}` {
		t.Fatalf("b got %+v", ev)
	}
	if len(a.eventsOf(protocol.TypeData))+len(c.eventsOf(protocol.TypeData)) != 0 {
		t.Fatal("a data message to b reached others")
	}
	if n, err := m.SendData(t.Context(), "r", nil, mustJSON("all")); err != nil || n != 3 {
		t.Fatalf("broadcast: %d %v", n, err)
	}
	for _, p := range []*testPeer{a, b, c} {
		p.waitEvent(protocol.TypeData, func(d any) bool { return string(d.(protocol.DataEvent).Payload) == `"all"` })
	}
	big := make([]byte, DefaultConfig().MaxDataPayload+1)
	for i := range big {
		big[i] = ' '
	}
	big[0] = '1'
	for _, bad := range [][]byte{nil, []byte("{"), big} {
		if _, err := m.SendData(t.Context(), "r", nil, bad); core.CodeOf(err) != core.CodeBadRequest {
			t.Errorf("payload %.10q: %v", bad, err)
		}
	}
	if _, err := m.SendData(t.Context(), "r", []string{"PA_gone"}, mustJSON(1)); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("only unknown targets: %v", err)
	}
	if _, err := m.SendData(t.Context(), "nowhere", nil, mustJSON(1)); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("unknown room: %v", err)
	}
}
