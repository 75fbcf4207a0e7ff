package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// fakeServer speaks just enough of the signaling protocol over a real
// WebSocket to exercise the client's plumbing: it answers join, resume, ping
// and, by default, every other request with success. Tests script the rest
// with handle and by pushing events.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	handle  func(fc *fakeConn, m protocol.Message) bool // true: handled
	conns   []*fakeConn
	session protocol.SessionInfo
	snap    protocol.JoinResponse
	reqs    []protocol.Message
	newConn chan *fakeConn
	wg      sync.WaitGroup
}

type fakeConn struct {
	s  *fakeServer
	ws *websocket.Conn
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	fs := &fakeServer{
		t:       t,
		newConn: make(chan *fakeConn, 16),
		session: protocol.SessionInfo{ID: "SE_1", ResumeToken: "secret", ResumeGraceMS: 5000, PingIntervalMS: 10000},
	}
	fs.snap = protocol.JoinResponse{
		Participant: protocol.ParticipantInfo{ID: "PA_self", Identity: "me", Grants: core.AllGrants, Tracks: []core.TrackInfo{}},
		Room:        protocol.RoomInfo{Name: "r", Participants: []protocol.ParticipantInfo{}},
	}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(func() {
		fs.dropAll()
		fs.srv.Close()
		fs.wg.Wait()
	})
	return fs
}

func (fs *fakeServer) url() string {
	return "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/v1/signal"
}

func (fs *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	fs.wg.Add(1)
	defer fs.wg.Done()
	fc := &fakeConn{s: fs, ws: ws}
	fs.mu.Lock()
	fs.conns = append(fs.conns, fc)
	fs.mu.Unlock()
	fs.newConn <- fc
	defer ws.CloseNow()
	for {
		_, b, err := ws.Read(context.Background())
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
		fc.ws.Close(websocket.StatusNormalClosure, "bye")
	default:
		fc.reply(m, struct{}{})
	}
}

func (fc *fakeConn) write(b []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = fc.ws.Write(ctx, websocket.MessageText, b)
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
		fc.ws.CloseNow()
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
