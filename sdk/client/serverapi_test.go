package client_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/core/room"
	"github.com/parleyhq/parley/core/sfu"
	"github.com/parleyhq/parley/core/signal"
	"github.com/parleyhq/parley/edge"
	"github.com/parleyhq/parley/sdk/client"
)

// The events the server API causes reach real clients through a real
// server (room manager, signaling, WebSocket): permissions, track mutes,
// data from the server, and removals with their reason and detail.

var apiSecret = []byte("0123456789abcdef0123456789abcdef")

// realServer is a single-node Parley stack on loopback.
type realServer struct {
	rooms *room.Manager
	edge  *edge.Server
}

func newRealServer(t *testing.T) *realServer {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	mc := sfu.DefaultConfig()
	mc.MediaPort, mc.IncludeLoopback = 0, true
	engine, err := sfu.New(mc, log)
	if err != nil {
		t.Fatal(err)
	}
	rooms, err := room.NewManager(room.DefaultConfig(), room.Deps{Engine: engine, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signal.New(signal.DefaultConfig(), signal.Deps{Auth: &devtoken.Verifier{Secret: apiSecret}, Rooms: rooms, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := edge.DefaultConfig()
	cfg.HTTPAddr, cfg.WebTransportAddr = "127.0.0.1:0", "127.0.0.1:0"
	s, err := edge.New(cfg, edge.Deps{Signal: sig, Info: func() edge.Info { return edge.Info{NodeID: "NO_test"} }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		rooms.Close(room.ReasonShutdown)
		_ = engine.Close()
	})
	return &realServer{rooms: rooms, edge: s}
}

// apiClient records what the server API's events did to one client.
type apiClient struct {
	*client.Client
	mu      sync.Mutex
	perms   []core.Grants
	mutes   []client.TrackMuted
	data    []client.DataMessage
	packets map[string]int
	closed  chan error
}

func (c *apiClient) snapshot() (perms []core.Grants, mutes []client.TrackMuted, data []client.DataMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(perms, c.perms...), append(mutes, c.mutes...), append(data, c.data...)
}

func (c *apiClient) received(track string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets[track]
}

func (s *realServer) join(t *testing.T, roomName, identity string) *apiClient {
	t.Helper()
	tok, err := devtoken.Mint(apiSecret, core.Claims{Identity: identity, Room: roomName, Grants: core.AllGrants}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(s.edge.SignalURL(), tok, client.WithLoopback(), client.WithTransport(client.TransportWebSocket))
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{Client: cl, packets: map[string]int{}, closed: make(chan error, 1)}
	cl.OnPermissions(func(g core.Grants) { c.mu.Lock(); c.perms = append(c.perms, g); c.mu.Unlock() })
	cl.OnTrackMuted(func(m client.TrackMuted) { c.mu.Lock(); c.mutes = append(c.mutes, m); c.mu.Unlock() })
	cl.OnData(func(m client.DataMessage) { c.mu.Lock(); c.data = append(c.data, m); c.mu.Unlock() })
	cl.OnClose(func(err error) { c.closed <- err })
	cl.OnTrack(func(rt *client.RemoteTrack) {
		go func() {
			for {
				if _, _, err := rt.Track().ReadRTP(); err != nil {
					return
				}
				c.mu.Lock()
				c.packets[rt.Track().ID()]++
				c.mu.Unlock()
			}
		}()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Connect(ctx); err != nil {
		t.Fatalf("%s: connect: %v", identity, err)
	}
	t.Cleanup(func() { cl.Close() })
	return c
}

func eventuallyT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendVP8 publishes a VP8 track fed every 10 ms until the test ends, and
// returns its Parley id.
func sendVP8(t *testing.T, c *apiClient) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	lt, err := c.PublishRTP(ctx, webrtc.MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1, Marker: true}, Payload: make([]byte, 200)}
		for seq := uint16(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*900
			pkt.Payload[0], pkt.Payload[1] = 0x10, 0x00 // every packet a VP8 keyframe start
			_ = lt.WriteRTP(pkt)
		}
	}()
	var id string
	eventuallyT(t, "the track published", func() bool {
		info, ok := lt.Info()
		id = info.ID
		return ok
	})
	return id
}

func TestServerAPIEventsReachClients(t *testing.T) {
	s := newRealServer(t)
	alice := s.join(t, "api", "alice")
	bob := s.join(t, "api", "bob")
	track := sendVP8(t, alice)
	eventuallyT(t, "media at bob", func() bool { return bob.received(track) > 10 })
	ctx := t.Context()

	// Permissions.
	g := core.Grants{CanSubscribe: true}
	if err := s.rooms.UpdateGrants(ctx, "api", bob.LocalParticipant().ID, g); err != nil {
		t.Fatal(err)
	}
	eventuallyT(t, "bob's permissions event", func() bool { p, _, _ := bob.snapshot(); return len(p) == 1 })
	if p, _, _ := bob.snapshot(); p[0] != g || bob.LocalParticipant().Grants != g {
		t.Fatalf("permissions %+v, local grants %+v", p, bob.LocalParticipant().Grants)
	}
	if err := bob.SendData(ctx, "", "hi"); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("data without the grant: %v", err)
	}

	// Mute.
	if err := s.rooms.MuteTrack(ctx, "api", alice.LocalParticipant().ID, track, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*apiClient{alice, bob} {
		eventuallyT(t, "track_muted", func() bool { _, m, _ := c.snapshot(); return len(m) == 1 })
		if _, m, _ := c.snapshot(); m[0].TrackID != track || !m[0].Muted || m[0].ParticipantID != alice.LocalParticipant().ID {
			t.Fatalf("mute event %+v", m)
		}
	}
	if ps := bob.Participants(); len(ps) != 1 || len(ps[0].MutedTracks) != 1 || ps[0].MutedTracks[0] != track {
		t.Fatalf("bob's view of alice after the mute: %+v", ps)
	}
	time.Sleep(100 * time.Millisecond)
	before := bob.received(track)
	time.Sleep(300 * time.Millisecond)
	if got := bob.received(track); got != before {
		t.Fatalf("bob received %d packets of a muted track", got-before)
	}
	if err := s.rooms.MuteTrack(ctx, "api", alice.LocalParticipant().ID, track, false); err != nil {
		t.Fatal(err)
	}
	eventuallyT(t, "media after the unmute", func() bool { return bob.received(track) > before+10 })
	if ps := bob.Participants(); len(ps[0].MutedTracks) != 0 {
		t.Fatalf("still muted after the unmute: %+v", ps)
	}

	// Data from the server, to bob only.
	if n, err := s.rooms.SendData(ctx, "api", []string{bob.LocalParticipant().ID}, []byte(`{"note":1}`)); err != nil || n != 1 {
		t.Fatalf("server data: %d %v", n, err)
	}
	eventuallyT(t, "server data at bob", func() bool { _, _, d := bob.snapshot(); return len(d) == 1 })
	if _, _, d := bob.snapshot(); !d[0].FromServer() || d[0].To != bob.LocalParticipant().ID || string(d[0].Payload) != `{"note":1}` {
		t.Fatalf("bob got %+v", d)
	}
	if _, _, d := alice.snapshot(); len(d) != 0 {
		t.Fatalf("alice got bob's message: %+v", d)
	}

	// Kick bob, then close the room on alice.
	if err := s.rooms.RemoveParticipant(ctx, "api", bob.LocalParticipant().ID, "bye"); err != nil {
		t.Fatal(err)
	}
	expectRemoved(t, bob, room.ReasonKicked, "bye")
	if err := s.rooms.CloseRoom(ctx, "api", "over"); err != nil {
		t.Fatal(err)
	}
	expectRemoved(t, alice, room.ReasonRoomClosed, "over")
}

func expectRemoved(t *testing.T, c *apiClient, reason, detail string) {
	t.Helper()
	select {
	case err := <-c.closed:
		cl, ok := client.ServerClosing(err)
		if !errors.Is(err, client.ErrServerClosed) || !errors.Is(err, core.ErrSessionExpired) || !ok || cl.Reason != reason || cl.Detail != detail {
			t.Fatalf("closed with %v (closing %+v)", err, cl)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("client not closed after removal %s", reason)
	}
}
