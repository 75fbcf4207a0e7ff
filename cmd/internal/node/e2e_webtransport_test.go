package node_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/sdk/client"
)

// TestBadInputOverWebTransport sends bad lines on their own WebTransport
// sessions while a call over WebTransport runs: each gets its documented
// error, an over-long line closes its session (even before its newline
// arrives), and the call is untouched.
func TestBadInputOverWebTransport(t *testing.T) {
	n := newNode(t, nil)
	call := startCallOver(t, n, client.TransportWebTransport, "calm")
	pad := strings.Repeat("x", 70<<10)

	for _, tc := range []struct {
		name string
		line string
		id   string
		code core.Code
	}{
		{"malformed json", `{"v":1,"id":"m1","type":` + "\n", "", core.CodeMalformed},
		{"not an object", "[1,2,3]\n", "", core.CodeMalformed},
		{"wrong version", `{"v":9,"id":"v1","type":"ping"}` + "\n", "v1", core.CodeUnsupportedVersion},
		{"unknown type", `{"v":1,"id":"u1","type":"teleport"}` + "\n", "u1", core.CodeUnknownType},
		{"request before auth", `{"v":1,"id":"a1","type":"subscribe","data":{"track_ids":[]}}` + "\n", "a1", core.CodeUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRawWT(t, n)
			r.sendRaw([]byte(tc.line))
			m, ok := r.next()
			if !ok {
				t.Fatal("stream ended without an error message")
			}
			if !m.IsResponse() || m.ID != tc.id || !errors.Is(m.Err(), &core.Error{Code: tc.code}) {
				t.Fatalf("got %+v (err %v), want response %q with code %q", m, m.Err(), tc.id, tc.code)
			}
			// The session stays usable; CRLF and blank lines are fine.
			r.sendRaw([]byte("\n\r\n" + `{"v":1,"id":"after","type":"ping"}` + "\r\n"))
			if resp := r.response("after"); resp.Err() != nil {
				t.Fatalf("ping after bad input: %v", resp.Err())
			}
		})
	}

	for _, tc := range []struct{ name, data string }{
		{"oversized line", `{"v":1,"id":"big","type":"ping","data":{"pad":"` + pad + `"}}` + "\n"},
		{"oversized line without its end", `{"v":1,"id":"big","type":"ping","data":{"pad":"` + pad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRawWT(t, n)
			// The server may stop reading (STOP_SENDING) before the write
			// is through: that is the refusal, not a failure.
			_ = r.str.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = r.str.Write([]byte(tc.data))
			m, ok := r.next()
			if !ok || m.Type != protocol.TypeClosing {
				t.Fatalf("want a closing event, got %+v (ok %v)", m, ok)
			}
			var c protocol.Closing
			if err := protocol.DecodeData(&m, &c); err != nil || c.Code != core.CodeMessageTooLarge {
				t.Fatalf("closing %+v (%v), want code %q", c, err, core.CodeMessageTooLarge)
			}
			if m, ok := r.next(); ok {
				t.Fatalf("stream still open after the closing event: %+v", m)
			}
		})
	}
	call.checkFlowing(t)
}

// TestResumeOverWebTransport drops WebTransport sessions abruptly and
// resumes them: a session joined over WebTransport resumes over
// WebTransport with its held events, and one joined over WebSocket resumes
// over WebTransport; sessions do not belong to a transport.
func TestResumeOverWebTransport(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Signal.ResumeGrace = 5 * time.Second })
	tok := func(identity string) string {
		s, err := n.MintToken("r", identity, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice := dialRawWT(t, n)
	alice.request("j", protocol.TypeJoin, protocol.JoinRequest{Token: tok("alice")})
	ja := joinResponse(t, alice.response("j"))
	bob, jb := joinRaw(t, n, "r", "bob")
	alice.nextEvent(protocol.TypeParticipantJoined)

	// alice's session vanishes; bob sends her data while she is away.
	_ = alice.sess.CloseWithError(9, "network gone")
	eventually(t, 5*time.Second, "server notices the drop", detachedOnly(n))
	bob.request("d", protocol.TypeData, protocol.DataRequest{Payload: mustJSON("while away")})
	if m := bob.response("d"); m.Err() != nil {
		t.Fatal(m.Err())
	}
	again := dialRawWT(t, n)
	again.request("res", protocol.TypeResume, protocol.ResumeRequest{SessionID: ja.Session.ID, ResumeToken: ja.Session.ResumeToken})
	jr := joinResponse(t, again.response("res"))
	if jr.Participant.ID != ja.Participant.ID || len(jr.Room.Participants) != 1 || jr.Room.Participants[0].Identity != "bob" {
		t.Fatalf("resumed as %s with room %+v", jr.Participant.ID, jr.Room.Participants)
	}
	ev := again.nextEvent(protocol.TypeData)
	var d protocol.DataEvent
	if err := protocol.DecodeData(&ev, &d); err != nil || d.FromIdentity != "bob" || string(d.Payload) != `"while away"` {
		t.Fatalf("data held across the resume: %+v (%v)", d, err)
	}

	// bob joined over WebSocket; his socket drops and he comes back over
	// WebTransport.
	bob.ws.CloseNow()
	eventually(t, 5*time.Second, "server notices bob's drop", detachedOnly(n))
	bobWT := dialRawWT(t, n)
	bobWT.request("res", protocol.TypeResume, protocol.ResumeRequest{SessionID: jb.Session.ID, ResumeToken: jb.Session.ResumeToken})
	if jr := joinResponse(t, bobWT.response("res")); jr.Participant.ID != jb.Participant.ID {
		t.Fatalf("bob resumed as %s, was %s", jr.Participant.ID, jb.Participant.ID)
	}
	bobWT.request("d2", protocol.TypeData, protocol.DataRequest{To: ja.Participant.ID, Payload: mustJSON("back")})
	if m := bobWT.response("d2"); m.Err() != nil {
		t.Fatal(m.Err())
	}
	ev = again.nextEvent(protocol.TypeData)
	if err := protocol.DecodeData(&ev, &d); err != nil || d.FromIdentity != "bob" || string(d.Payload) != `"back"` {
		t.Fatalf("data after bob's resume: %+v (%v)", d, err)
	}
}

// detachedOnly holds once one session is detached and one connection is
// left: the dropped connection is gone, not merely a session that is still
// being attached after its join.
func detachedOnly(n *node.Node) func() bool {
	return func() bool {
		st := n.SignalStats()
		return st.Detached == 1 && st.Connections == 1
	}
}

// joinResponse decodes a successful join or resume response.
func joinResponse(t *testing.T, m protocol.Message) protocol.JoinResponse {
	t.Helper()
	if m.Err() != nil {
		t.Fatalf("%s: %v", m.Type, m.Err())
	}
	var jr protocol.JoinResponse
	if err := protocol.DecodeData(&m, &jr); err != nil {
		t.Fatal(err)
	}
	return jr
}

// TestMixedTransportsRoom puts one client on each transport in one room:
// the WebTransport one pins the certificate by the hashes GET /v1/cert-hash
// serves. Each publishes VP8 and receives the other's, and data messages
// cross both ways.
func TestMixedTransportsRoom(t *testing.T) {
	n := newNode(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hashes, err := client.FetchCertHashes(ctx, n.URL()+"/v1/cert-hash")
	if err != nil {
		t.Fatal(err)
	}
	type side struct {
		c          *client.Client
		media, got atomic.Int64
	}
	var ws, wt side
	var readers sync.WaitGroup
	t.Cleanup(readers.Wait) // after the clients close, which ends the reads
	setup := func(s *side) func(*client.Client) {
		return func(c *client.Client) {
			c.OnTrack(func(rt *client.RemoteTrack) {
				readers.Go(func() {
					for {
						if _, _, err := rt.ReadRTP(); err != nil {
							return
						}
						s.media.Add(1)
					}
				})
			})
			c.OnData(func(client.DataMessage) { s.got.Add(1) })
		}
	}
	ws.c = connectClientOver(t, n, client.TransportWebSocket, "mixed", "ws-user", setup(&ws))
	tok, err := n.MintToken("mixed", "wt-user", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wt.c = connectMedia(t, n.WebTransportURL(), tok, setup(&wt), client.WithCertHash(hashes...))
	if ws.c.Transport() != client.TransportWebSocket || wt.c.Transport() != client.TransportWebTransport {
		t.Fatalf("transports %v and %v", ws.c.Transport(), wt.c.Transport())
	}
	for _, s := range []*side{&ws, &wt} {
		lt, err := s.c.PublishRTP(ctx, webrtc.MimeTypeVP8)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		pctx, stop := context.WithCancel(ctx)
		go pump(pctx, lt, done)
		t.Cleanup(func() { stop(); <-done })
	}
	eventually(t, 10*time.Second, "media both ways", func() bool { return ws.media.Load() > 20 && wt.media.Load() > 20 })
	if err := ws.c.SendData(ctx, "", "to the room"); err != nil {
		t.Fatal(err)
	}
	if err := wt.c.SendData(ctx, ws.c.LocalParticipant().ID, "to ws-user"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "data both ways", func() bool { return ws.got.Load() == 1 && wt.got.Load() == 1 })
	for _, s := range []*side{&wt, &ws} {
		if err := s.c.Leave(ctx); err != nil {
			t.Errorf("leave: %v", err)
		}
	}
}
