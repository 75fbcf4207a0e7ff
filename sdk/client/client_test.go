package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect makes a client of fs, lets setup register callbacks, connects.
func connect(t *testing.T, fs *fakeServer, setup func(*Client), opts ...Option) *Client {
	t.Helper()
	c, err := New(fs.url(), "tok", append(fs.opts(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(c)
	}
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recorder collects callback reports in order.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.got = append(r.got, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) has(s string) bool { return slices.Contains(r.list(), s) }

func TestConnectSendsJoinAndKeepsSnapshot(t *testing.T) {
	onEachTransport(t, testConnectSendsJoinAndKeepsSnapshot)
}

func testConnectSendsJoinAndKeepsSnapshot(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	bob := protocol.ParticipantInfo{ID: "PA_bob", Identity: "bob", Tracks: []core.TrackInfo{
		{ID: "TR_1", ParticipantID: "PA_bob", Identity: "bob", Kind: core.KindAudio, MimeType: "audio/opus"},
	}}
	fs.mu.Lock() // the race detector sees no order through a UDP socket
	fs.snap.Room.Participants = []protocol.ParticipantInfo{fs.snap.Participant, bob}
	fs.mu.Unlock()
	c := connect(t, fs, nil, WithAutoSubscribe(false), WithMetadata("md"))

	var join protocol.JoinRequest
	m := fs.reqsOf(protocol.TypeJoin)[0]
	if err := protocol.DecodeData(&m, &join); err != nil {
		t.Fatal(err)
	}
	if join.Token != "tok" || join.AutoSubscribe == nil || *join.AutoSubscribe || join.Metadata != "md" {
		t.Fatalf("join request = %+v", join)
	}
	ps := c.Participants()
	if len(ps) != 1 || ps[0].Identity != "bob" || len(ps[0].Tracks) != 1 || ps[0].Tracks[0].ID != "TR_1" {
		t.Fatalf("participants = %+v", ps)
	}
	if got := c.LocalParticipant().ID; got != "PA_self" {
		t.Fatalf("local participant = %q", got)
	}
	if c.State() != StateConnected {
		t.Fatalf("state = %v", c.State())
	}
}

func TestConnectRefused(t *testing.T) { onEachTransport(t, testConnectRefused) }

func testConnectRefused(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	fs.setHandle(func(fc *fakeConn, m protocol.Message) bool {
		if m.Type != protocol.TypeJoin {
			return false
		}
		fc.fail(m, core.Errorf(core.CodeInvalidToken, "bad signature"))
		return true
	})
	c, err := New(fs.url(), "tok", fs.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Connect(ctxT(t))
	if !errors.Is(err, core.ErrInvalidToken) {
		t.Fatalf("connect error = %v, want invalid_token", err)
	}
	if err := c.SendData(ctxT(t), "", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after failed connect = %v, want ErrClosed", err)
	}
	c.Close()
}

func TestRequestsCorrelatedOutOfOrder(t *testing.T) {
	onEachTransport(t, testRequestsCorrelatedOutOfOrder)
}

func testRequestsCorrelatedOutOfOrder(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	var mu sync.Mutex
	var held []protocol.Message
	fs.setHandle(func(fc *fakeConn, m protocol.Message) bool {
		if m.Type != protocol.TypeData {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		held = append(held, m)
		if len(held) < 5 {
			return true
		}
		for i := len(held) - 1; i >= 0; i-- { // answer in reverse
			var req protocol.DataRequest
			_ = protocol.DecodeData(&held[i], &req)
			if string(req.Payload) == "3" {
				fc.fail(held[i], core.Errorf(core.CodeForbidden, "no data for you"))
				continue
			}
			fc.reply(held[i], struct{}{})
		}
		return true
	})
	c := connect(t, fs, nil)
	errs := make([]error, 5)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() { errs[i] = c.SendData(ctxT(t), "", i) })
	}
	wg.Wait()
	for i, err := range errs {
		if want := i == 3; errors.Is(err, core.ErrForbidden) != want || (!want && err != nil) {
			t.Errorf("SendData(%d) = %v", i, err)
		}
	}
}

func TestEventsReachCallbacksInOrderWithoutBlockingReads(t *testing.T) {
	onEachTransport(t, testEventsReachCallbacksInOrderWithoutBlockingReads)
}

func testEventsReachCallbacksInOrderWithoutBlockingReads(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	var rec recorder
	release := make(chan struct{})
	c := connect(t, fs, func(c *Client) {
		c.OnParticipantJoined(func(p protocol.ParticipantInfo) {
			<-release // a slow callback must not hold up the connection
			rec.add("joined %s", p.Identity)
		})
		c.OnTrackPublished(func(ti core.TrackInfo) { rec.add("published %s %s", ti.ID, ti.Identity) })
		c.OnData(func(d DataMessage) {
			var v map[string]int
			_ = d.Decode(&v)
			rec.add("data %s %d", d.FromIdentity, v["n"])
		})
		c.OnTrackUnpublished(func(ti core.TrackInfo) { rec.add("unpublished %s", ti.ID) })
		c.OnParticipantLeft(func(l protocol.ParticipantLeft) { rec.add("left %s %s", l.Identity, l.Reason) })
	})
	fc := fs.conn()
	bob := protocol.ParticipantInfo{ID: "PA_bob", Identity: "bob"}
	track := core.TrackInfo{ID: "TR_b", ParticipantID: "PA_bob", Identity: "bob", Kind: core.KindVideo}
	fc.event(protocol.TypeParticipantJoined, bob)
	fc.event(protocol.TypeTrackPublished, track)
	fc.event(protocol.TypeData, protocol.DataEvent{From: "PA_bob", FromIdentity: "bob", Payload: []byte(`{"n":7}`)})
	waitFor(t, "bob in participants", func() bool { return len(c.Participants()) == 1 })
	if err := c.SendData(ctxT(t), "", "hi"); err != nil {
		t.Fatalf("request while a callback blocks: %v", err)
	}
	close(release)
	fc.event(protocol.TypeTrackUnpublished, protocol.TrackUnpublished{TrackID: "TR_b", ParticipantID: "PA_bob"})
	fc.event(protocol.TypeParticipantLeft, protocol.ParticipantLeft{ParticipantID: "PA_bob", Identity: "bob", Reason: "leave"})
	want := []string{"joined bob", "published TR_b bob", "data bob 7", "unpublished TR_b", "left bob leave"}
	waitFor(t, "all callbacks", func() bool { return len(rec.list()) == len(want) })
	if got := rec.list(); !slices.Equal(got, want) {
		t.Fatalf("callbacks = %q, want %q", got, want)
	}
	if ps := c.Participants(); len(ps) != 0 {
		t.Fatalf("participants after leave = %+v", ps)
	}
}

func TestResumeAfterDrop(t *testing.T) { onEachTransport(t, testResumeAfterDrop) }

func testResumeAfterDrop(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	var rec recorder
	c := connect(t, fs, func(c *Client) {
		c.OnStateChange(func(s State) { rec.add("state %s", s) })
		c.OnReconnect(func() { rec.add("reconnected") })
		c.OnParticipantJoined(func(p protocol.ParticipantInfo) { rec.add("joined %s", p.Identity) })
	})
	fs.conn()
	// While the client is away, carol joins; the resume snapshot shows her.
	fs.mu.Lock()
	fs.snap.Room.Participants = []protocol.ParticipantInfo{{ID: "PA_carol", Identity: "carol"}}
	fs.session.ResumeToken = "secret2"
	fs.mu.Unlock()
	fs.dropAll()
	fs.conn()
	waitFor(t, "reconnected", func() bool { return rec.has("reconnected") })

	m := fs.reqsOf(protocol.TypeResume)[0]
	var req protocol.ResumeRequest
	if err := protocol.DecodeData(&m, &req); err != nil || req.SessionID != "SE_1" || req.ResumeToken != "secret" {
		t.Fatalf("resume request = %+v, %v", req, err)
	}
	want := []string{"state connecting", "state connected", "state reconnecting", "joined carol", "state connected", "reconnected"}
	if got := rec.list(); !slices.Equal(got, want) {
		t.Fatalf("callbacks = %q, want %q", got, want)
	}
	if err := c.SendData(ctxT(t), "", 1); err != nil {
		t.Fatalf("send after resume: %v", err)
	}
	// The next resume uses the new token.
	fs.dropAll()
	fs.conn()
	waitFor(t, "second resume", func() bool { return len(fs.reqsOf(protocol.TypeResume)) == 2 })
	m = fs.reqsOf(protocol.TypeResume)[1]
	if err := protocol.DecodeData(&m, &req); err != nil || req.ResumeToken != "secret2" {
		t.Fatalf("second resume request = %+v, %v", req, err)
	}
}

func TestRequestWaitsForResume(t *testing.T) { onEachTransport(t, testRequestWaitsForResume) }

func testRequestWaitsForResume(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	c := connect(t, fs, nil)
	fs.conn()
	slow := make(chan struct{})
	fs.setHandle(func(fc *fakeConn, m protocol.Message) bool {
		if m.Type == protocol.TypeResume {
			<-slow
		}
		return false
	})
	fs.dropAll()
	waitFor(t, "reconnecting", func() bool { return c.State() == StateReconnecting })
	done := make(chan error, 1)
	go func() { done <- c.SendData(ctxT(t), "PA_x", "later") }()
	time.Sleep(20 * time.Millisecond)
	close(slow)
	if err := <-done; err != nil {
		t.Fatalf("request across the reconnect: %v", err)
	}
}

func TestResumeRefusedClosesClient(t *testing.T) { onEachTransport(t, testResumeRefusedClosesClient) }

func testResumeRefusedClosesClient(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	closed := make(chan error, 1)
	c := connect(t, fs, func(c *Client) { c.OnClose(func(err error) { closed <- err }) })
	fs.conn()
	fs.setHandle(func(fc *fakeConn, m protocol.Message) bool {
		if m.Type != protocol.TypeResume {
			return false
		}
		fc.fail(m, core.Errorf(core.CodeSessionExpired, "gone"))
		return true
	})
	fs.dropAll()
	err := <-closed
	if !errors.Is(err, ErrResumeFailed) || !errors.Is(err, core.ErrSessionExpired) {
		t.Fatalf("close reason = %v", err)
	}
	<-c.Done()
	if !errors.Is(c.Err(), ErrResumeFailed) || c.State() != StateClosed {
		t.Fatalf("Err = %v, state = %v", c.Err(), c.State())
	}
}

func TestClosingEventPreventsResume(t *testing.T) { onEachTransport(t, testClosingEventPreventsResume) }

func testClosingEventPreventsResume(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	c := connect(t, fs, nil)
	fc := fs.conn()
	fc.event(protocol.TypeClosing, protocol.Closing{Reason: "server shutting down", Code: core.CodeUnavailable})
	fc.hangUp()
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ErrServerClosed) || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Err = %v", err)
	}
	if n := fs.count(protocol.TypeResume); n != 0 {
		t.Fatalf("%d resume attempts after closing", n)
	}
}

func TestLeave(t *testing.T) { onEachTransport(t, testLeave) }

func testLeave(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	closed := make(chan error, 1)
	c := connect(t, fs, func(c *Client) { c.OnClose(func(err error) { closed <- err }) })
	if err := c.Leave(ctxT(t)); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close reason after leave = %v", err)
	}
	if fs.count(protocol.TypeLeave) != 1 || fs.count(protocol.TypeResume) != 0 {
		t.Fatalf("requests = %q", fs.requests())
	}
	if err := c.SendData(ctxT(t), "", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after leave = %v", err)
	}
}

func TestCloseFromCallback(t *testing.T) { onEachTransport(t, testCloseFromCallback) }

func testCloseFromCallback(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	c := connect(t, fs, func(c *Client) {
		c.OnData(func(DataMessage) { c.Close() })
	})
	fs.conn().event(protocol.TypeData, protocol.DataEvent{From: "PA_x", Payload: []byte("1")})
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Close from a callback did not finish")
	}
}

func TestPingKeepsAlive(t *testing.T) { onEachTransport(t, testPingKeepsAlive) }

func testPingKeepsAlive(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	fs.mu.Lock()
	fs.session.PingIntervalMS = 20
	fs.mu.Unlock()
	connect(t, fs, nil)
	waitFor(t, "three pings", func() bool { return fs.count(protocol.TypePing) >= 3 })
}

func TestUnansweredPingResumes(t *testing.T) { onEachTransport(t, testUnansweredPingResumes) }

func testUnansweredPingResumes(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	fs.mu.Lock()
	fs.session.PingIntervalMS = 30
	fs.mu.Unlock()
	var once sync.Once
	fs.setHandle(func(fc *fakeConn, m protocol.Message) bool {
		handled := false
		if m.Type == protocol.TypePing {
			once.Do(func() { handled = true }) // swallow the first ping
		}
		return handled
	})
	var rec recorder
	connect(t, fs, func(c *Client) { c.OnReconnect(func() { rec.add("reconnected") }) })
	waitFor(t, "resume after a lost ping", func() bool { return rec.has("reconnected") })
}

func TestNewValidates(t *testing.T) {
	if _, err := New("ftp://x", "tok"); err == nil {
		t.Error("ftp url accepted")
	}
	if _, err := New("ws://x/v1/signal", ""); err == nil {
		t.Error("empty token accepted")
	}
	c, err := New("ws://x/v1/signal", "tok")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishRTP(ctxT(t), "video/vp8"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("publish before connect = %v", err)
	}
	if _, err := c.PublishRTP(ctxT(t), "video/av2"); !errors.Is(err, ErrUnsupportedCodec) {
		t.Errorf("publish with unknown codec = %v", err)
	}
	c.Close()
	if err := c.Connect(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("connect after close = %v", err)
	}
}

func TestIdleClosingIsResumed(t *testing.T) { onEachTransport(t, testIdleClosingIsResumed) }

func testIdleClosingIsResumed(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	var rec recorder
	c := connect(t, fs, func(c *Client) { c.OnReconnect(func() { rec.add("reconnected") }) })
	fc := fs.conn()
	fc.event(protocol.TypeClosing, protocol.Closing{Reason: "idle", Code: core.CodeTimeout})
	fc.hangUp()
	waitFor(t, "resume after an idle close", func() bool { return rec.has("reconnected") })
	if c.Err() != nil || c.State() != StateConnected {
		t.Fatalf("Err = %v, state = %v", c.Err(), c.State())
	}
}

func TestClosingDuringResumeStopsRetrying(t *testing.T) {
	onEachTransport(t, testClosingDuringResumeStopsRetrying)
}

func testClosingDuringResumeStopsRetrying(t *testing.T, tr Transport) {
	fs := newFakeServer(t, tr)
	c := connect(t, fs, nil)
	fs.conn()
	fs.setHandle(func(fc *fakeConn, m protocol.Message) bool {
		if m.Type != protocol.TypeResume {
			return false
		}
		fc.event(protocol.TypeClosing, protocol.Closing{Reason: "server shutting down", Code: core.CodeUnavailable})
		fc.hangUp()
		return true
	})
	start := time.Now()
	fs.dropAll()
	<-c.Done()
	err := c.Err()
	if !errors.Is(err, ErrResumeFailed) || !errors.Is(err, ErrServerClosed) || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Err = %v", err)
	}
	if n := fs.count(protocol.TypeResume); n != 1 || time.Since(start) > 2*time.Second {
		t.Fatalf("%d resume attempts over %s after the server said it is shutting down", n, time.Since(start))
	}
}
