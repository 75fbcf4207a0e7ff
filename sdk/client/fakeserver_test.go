package client

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/quic-go/webtransport-go"
)

// fakeServer speaks just enough of the signaling protocol over a real
// WebSocket or WebTransport server to exercise the client's plumbing: it
// answers join, resume, ping and, by default, every other request with
// success. Tests script the rest with handle and by pushing events.
type fakeServer struct {
	t   *testing.T
	tr  Transport
	srv *httptest.Server // WebSocket
	wt  *wtServer        // WebTransport

	mu      sync.Mutex
	handle  func(fc *fakeConn, m protocol.Message) bool // true: handled
	conns   []*fakeConn
	session protocol.SessionInfo
	snap    protocol.JoinResponse
	reqs    []protocol.Message
	newConn chan *fakeConn
	wg      sync.WaitGroup
}

// fakeConn is one client connection; tc is the server's end, framed by the
// client's own transport code.
type fakeConn struct {
	s  *fakeServer
	tc transportConn
}

// onEachTransport runs test once over WebSocket and once over WebTransport,
// as subtests named after the transport.
func onEachTransport(t *testing.T, test func(t *testing.T, tr Transport)) {
	for _, tr := range []Transport{TransportWebSocket, TransportWebTransport} {
		t.Run(tr.String(), func(t *testing.T) { test(t, tr) })
	}
}

func newFakeServer(t *testing.T, tr Transport) *fakeServer {
	t.Helper()
	fs := &fakeServer{
		t:       t,
		tr:      tr,
		newConn: make(chan *fakeConn, 16),
		session: protocol.SessionInfo{ID: "SE_1", ResumeToken: "secret", ResumeGraceMS: 5000, PingIntervalMS: 10000},
	}
	fs.snap = protocol.JoinResponse{
		Participant: protocol.ParticipantInfo{ID: "PA_self", Identity: "me", Grants: core.AllGrants, Tracks: []core.TrackInfo{}},
		Room:        protocol.RoomInfo{Name: "r", Participants: []protocol.ParticipantInfo{}},
	}
	if tr == TransportWebTransport {
		fs.wt = newWTServer(t, validCert(t), func(sess *webtransport.Session, str *webtransport.Stream) {
			fs.run(&fakeConn{s: fs, tc: wtServerConn(sess, str)})
		})
	} else {
		fs.srv = httptest.NewServer(http.HandlerFunc(fs.serveWS))
	}
	t.Cleanup(func() {
		fs.dropAll()
		if fs.srv != nil {
			fs.srv.Close()
		}
		fs.wg.Wait()
	})
	return fs
}

func (fs *fakeServer) url() string {
	if fs.wt != nil {
		return fs.wt.url()
	}
	return "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/v1/signal"
}

// opts are the client options the server needs: its certificate pinned.
func (fs *fakeServer) opts() []Option {
	if fs.wt != nil {
		return []Option{WithCertHash(fs.wt.cert.hash)}
	}
	return nil
}

func (fs *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	fs.run(&fakeConn{s: fs, tc: &wsConn{ws: ws, log: slog.New(slog.DiscardHandler)}})
}

// run serves one connection until it fails.
func (fs *fakeServer) run(fc *fakeConn) {
	fs.wg.Add(1)
	defer fs.wg.Done()
	fs.mu.Lock()
	fs.conns = append(fs.conns, fc)
	fs.mu.Unlock()
	fs.newConn <- fc
	defer fc.closeNow()
	for {
		b, err := fc.tc.readMessage()
		if err != nil {
			return
		}
		m, err := protocol.Decode(b)
		if err != nil {
			fs.t.Errorf("client sent undecodable %s: %v", b, err)
			return
		}
		fs.mu.Lock()
		fs.reqs = append(fs.reqs, m)
		h := fs.handle
		fs.mu.Unlock()
		if h != nil && h(fc, m) {
			continue
		}
		fc.answer(m)
	}
}

// answer is the default behaviour.
func (fc *fakeConn) answer(m protocol.Message) {
	fs := fc.s
	switch m.Type {
	case protocol.TypeJoin, protocol.TypeResume:
		fs.mu.Lock()
		resp := fs.snap
		resp.Session = fs.session
		fs.mu.Unlock()
		fc.reply(m, resp)
	case protocol.TypePing:
		fc.reply(m, protocol.PingResponse{ServerTimeMS: time.Now().UnixMilli()})
	case protocol.TypeLeave:
		fc.reply(m, struct{}{})
		fc.closeGracefully()
	default:
		fc.reply(m, struct{}{})
	}
}

func (fc *fakeConn) write(b []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = fc.tc.writeMessage(ctx, b)
}

// closeNow drops the connection abruptly. Over WebTransport what was
// written may be lost; use hangUp when the client must read it.
func (fc *fakeConn) closeNow() { _ = fc.tc.close() }

// hangUp closes the connection after what was written reaches the client:
// over TCP closing does that; over WebTransport closing the session would
// reset the stream, so the control stream is ended first, as the Parley
// server does.
func (fc *fakeConn) hangUp() {
	if c, ok := fc.tc.(*wtConn); ok {
		finishWT(c)
		return
	}
	fc.closeNow()
}

// closeGracefully ends the connection the way the Parley server does after
// leave: a WebSocket close handshake, or the end of the control stream.
func (fc *fakeConn) closeGracefully() {
	switch c := fc.tc.(type) {
	case *wsConn:
		_ = c.ws.Close(websocket.StatusNormalClosure, "bye")
	case *wtConn:
		finishWT(c)
	}
}

func (fc *fakeConn) reply(m protocol.Message, data any) {
	b, err := protocol.Response(m.ID, m.Type, data)
	if err != nil {
		fc.s.t.Error(err)
		return
	}
	fc.write(b)
}

func (fc *fakeConn) fail(m protocol.Message, err error) {
	fc.write(protocol.ErrorResponse(m.ID, m.Type, err))
}

func (fc *fakeConn) event(typ string, data any) {
	b, err := protocol.Event(typ, data)
	if err != nil {
		fc.s.t.Error(err)
		return
	}
	fc.write(b)
}

// setHandle installs a request handler; it runs on the connection's read
// goroutine and returns true when it answered the request itself.
func (fs *fakeServer) setHandle(h func(fc *fakeConn, m protocol.Message) bool) {
	fs.mu.Lock()
	fs.handle = h
	fs.mu.Unlock()
}

// conn waits for the next connection.
func (fs *fakeServer) conn() *fakeConn {
	fs.t.Helper()
	select {
	case fc := <-fs.newConn:
		return fc
	case <-time.After(5 * time.Second):
		fs.t.Fatal("no connection from the client")
		return nil
	}
}

// requests returns the types of the requests received so far.
func (fs *fakeServer) requests() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []string
	for _, m := range fs.reqs {
		out = append(out, m.Type)
	}
	return out
}

func (fs *fakeServer) count(typ string) int {
	n := 0
	for _, t := range fs.requests() {
		if t == typ {
			n++
		}
	}
	return n
}

// dropAll closes every connection abruptly.
func (fs *fakeServer) dropAll() {
	fs.mu.Lock()
	conns := fs.conns
	fs.conns = nil
	fs.mu.Unlock()
	for _, fc := range conns {
		fc.closeNow()
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reqsOf returns the requests of one type received so far.
func (fs *fakeServer) reqsOf(typ string) []protocol.Message {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []protocol.Message
	for _, m := range fs.reqs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}
