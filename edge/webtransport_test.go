package edge

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/core/room"
	"github.com/parleyhq/parley/core/sfu"
	"github.com/parleyhq/parley/core/signal"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// newTestServer starts an edge server on free ports with a real signaling
// stack behind it; before, if set, runs between New and Start.
func newTestServer(t *testing.T, mutate func(*Config, *signal.Config), before func(*Server)) *Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
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
	cfg, sc := DefaultConfig(), signal.DefaultConfig()
	cfg.HTTPAddr, cfg.WebTransportAddr = "127.0.0.1:0", "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg, &sc)
	}
	sig, err := signal.New(sc, signal.Deps{Auth: &devtoken.Verifier{Secret: testSecret}, Rooms: rooms, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Signal: sig, Info: func() Info { return Info{NodeID: "NO_test"} }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		rooms.Close(room.ReasonShutdown)
		_ = engine.Close()
	})
	return s
}

func testToken(t *testing.T, roomName, identity string) string {
	t.Helper()
	tok, err := devtoken.Mint(testSecret, core.Claims{Identity: identity, Room: roomName, Grants: core.AllGrants}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wtClient is a WebTransport signaling client speaking lines by hand.
type wtClient struct {
	t    *testing.T
	sess *webtransport.Session
	str  *webtransport.Stream
	r    *bufio.Reader
}

// dialWT connects to s's WebTransport URL, pinning the certificate by the
// hash s serves, with origin as the Origin header when set.
func dialWT(t *testing.T, s *Server, origin string) (*wtClient, *http.Response, error) {
	t.Helper()
	ci, _ := s.CertInfo()
	return dialWTWith(t, s.WebTransportURL(), ci, origin)
}

func dialWTWith(t *testing.T, url string, ci CertInfo, origin string) (*wtClient, *http.Response, error) {
	t.Helper()
	tr := &webtransport.Transport{
		TLSClientConfig: pinnedTLS(ci),
		QUICConfig:      &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true},
	}
	t.Cleanup(func() { _ = tr.Close() })
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rsp, sess, err := tr.Dial(ctx, url, h)
	if err != nil {
		return nil, rsp, err
	}
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open control stream: %v", err)
	}
	return &wtClient{t: t, sess: sess, str: str, r: bufio.NewReader(str)}, rsp, nil
}

// pinnedTLS accepts exactly the certificates whose hashes ci lists.
func pinnedTLS(ci CertInfo) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // verified by hash below, as a browser does with serverCertificateHashes
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			for _, h := range ci.Hashes {
				if h.Hex == hex.EncodeToString(sum[:]) {
					return nil
				}
			}
			return fmt.Errorf("certificate hash %x not pinned", sum)
		},
	}
}

func (c *wtClient) send(line string) {
	c.t.Helper()
	if _, err := c.str.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wtClient) request(id, typ string, data any) {
	c.t.Helper()
	b, err := protocol.Request(id, typ, data)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(string(b))
}

// next reads one line; ok is false when the stream ended.
func (c *wtClient) next() (protocol.Message, bool) {
	c.t.Helper()
	_ = c.str.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return protocol.Message{}, false
	}
	m, err := protocol.Decode([]byte(strings.TrimSuffix(line, "\n")))
	if err != nil {
		c.t.Fatalf("undecodable line %q: %v", line, err)
	}
	return m, true
}

func (c *wtClient) response(id string) protocol.Message {
	c.t.Helper()
	for {
		m, ok := c.next()
		if !ok {
			c.t.Fatalf("stream ended waiting for response %q", id)
		}
		if m.IsResponse() && m.ID == id {
			return m
		}
	}
}

func TestWebTransportJoinPingLeave(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil, nil)
	c, _, err := dialWT(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	c.request("1", protocol.TypeJoin, protocol.JoinRequest{Token: testToken(t, "r1", "alice")})
	m := c.response("1")
	if err := m.Err(); err != nil {
		t.Fatalf("join: %v", err)
	}
	var jr protocol.JoinResponse
	if err := protocol.DecodeData(&m, &jr); err != nil || jr.Participant.Identity != "alice" {
		t.Fatalf("join response %+v, %v", jr, err)
	}
	// Blank lines and \r\n endings are tolerated; a malformed line is
	// answered and the connection stays open.
	c.send("")
	c.send(`{"v":1,"id":"2","type":"ping"}` + "\r")
	if m := c.response("2"); m.Err() != nil {
		t.Fatalf("ping: %v", m.Err())
	}
	c.send(`{"v":1,"id":"3","type":"ping","bogus":1}`)
	if m := c.response("3"); core.CodeOf(m.Err()) != core.CodeMalformed {
		t.Fatalf("bogus field: got %v, want malformed_message", m.Err())
	}
	c.request("4", protocol.TypeLeave, nil)
	if m := c.response("4"); m.Err() != nil {
		t.Fatalf("leave: %v", m.Err())
	}
	if _, ok := c.next(); ok {
		t.Fatal("stream still open after leave")
	}
}

func TestWebTransportMessageTooLarge(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(_ *Config, sc *signal.Config) { sc.MaxMessageSize = 2048 }, nil)
	c, _, err := dialWT(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	// No newline at all: the server must not wait for one.
	if _, err := c.str.Write([]byte(`{"v":1,"id":"1","type":"ping","data":"` + strings.Repeat("x", 4000))); err != nil {
		t.Fatal(err)
	}
	m, ok := c.next()
	if !ok {
		t.Fatal("stream ended without a closing event")
	}
	var cl protocol.Closing
	if err := protocol.DecodeData(&m, &cl); err != nil || m.Type != protocol.TypeClosing || cl.Code != core.CodeMessageTooLarge {
		t.Fatalf("got %s %+v (%v), want closing message_too_large", m.Type, cl, err)
	}
	if _, ok := c.next(); ok {
		t.Fatal("stream still open after message_too_large")
	}
}

func TestWebTransportResumeAfterDrop(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil, nil)
	c, _, err := dialWT(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	c.request("1", protocol.TypeJoin, protocol.JoinRequest{Token: testToken(t, "r2", "bob")})
	m := c.response("1")
	var jr protocol.JoinResponse
	if err := protocol.DecodeData(&m, &jr); err != nil {
		t.Fatal(err)
	}
	_ = c.sess.CloseWithError(0, "network gone")
	c2, _, err := dialWT(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	c2.request("r", protocol.TypeResume, protocol.ResumeRequest{SessionID: jr.Session.ID, ResumeToken: jr.Session.ResumeToken})
	var again protocol.JoinResponse
	m = c2.response("r")
	if err := protocol.DecodeData(&m, &again); err != nil || again.Participant.ID != jr.Participant.ID {
		t.Fatalf("resume: %v %+v, want participant %s", err, again.Participant, jr.Participant.ID)
	}
}

func TestWebTransportOriginPolicy(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, func(c *Config, _ *signal.Config) { c.AllowedOrigins = []string{"*.example.org"} }, nil)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://127.0.0.1:7070", true},         // same host, page on the HTTP port
		{"http://localhost:7070", true},         // loopback page, loopback server
		{"https://app.example.org", true},       // configured pattern
		{"https://evil.example.com", false},     // anything else
		{"https://example.org.evil.com", false}, // pattern is not a suffix match
	} {
		c, rsp, err := dialWT(t, s, tc.origin)
		if tc.ok && err != nil {
			t.Errorf("origin %q rejected: %v", tc.origin, err)
		}
		if !tc.ok {
			if err == nil {
				_ = c.sess.CloseWithError(0, "")
				t.Errorf("origin %q accepted", tc.origin)
			} else if rsp == nil || rsp.StatusCode != http.StatusForbidden {
				t.Errorf("origin %q: got %v (%v), want 403", tc.origin, rsp, err)
			}
		}
	}
	dev := newTestServer(t, func(c *Config, _ *signal.Config) { c.Dev = true }, nil)
	if _, _, err := dialWT(t, dev, "https://evil.example.com"); err != nil {
		t.Errorf("dev mode rejected another origin: %v", err)
	}
}

func TestWebTransportCertRotationKeepsSessions(t *testing.T) {
	t.Parallel()
	var certs *certSource
	s := newTestServer(t, nil, func(s *Server) {
		s.certs.Close()
		var err error
		certs, err = newCertSourceTimes("", "", nil, s.log, certTimes{validity: 6 * time.Second, renew: 2 * time.Second, announce: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s.certs = certs
	})
	first := certs.info()
	c, _, err := dialWT(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	c.request("1", protocol.TypeJoin, protocol.JoinRequest{Token: testToken(t, "r3", "carol")})
	if m := c.response("1"); m.Err() != nil {
		t.Fatal(m.Err())
	}
	deadline := time.Now().Add(8 * time.Second)
	for certs.info().Hex == first.Hex {
		if time.Now().After(deadline) {
			t.Fatal("certificate not rotated")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.request("2", protocol.TypePing, nil)
	if m := c.response("2"); m.Err() != nil {
		t.Fatalf("session dropped by rotation: %v", m.Err())
	}
	if _, _, err := dialWT(t, s, ""); err != nil {
		t.Fatalf("dial with the new hash: %v", err)
	}
	if _, _, err := dialWTWith(t, s.WebTransportURL(), CertInfo{Hashes: []CertHash{first.CertHash}}, ""); err == nil {
		t.Fatal("dial pinned to the expired hash succeeded")
	}
}

func TestCertHashEndpointAndInfo(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil, nil)
	var ci CertInfo
	getJSON(t, s.URL()+"/v1/cert-hash", &ci)
	if !ci.Pin || !ci.SelfSigned || len(ci.Hashes) == 0 || ci.Hashes[0].Hex != ci.Hex || ci.Algorithm != "sha-256" {
		t.Fatalf("cert-hash %+v", ci)
	}
	if d := ci.NotAfter.Sub(ci.NotBefore); d >= 14*24*time.Hour || d < 24*time.Hour {
		t.Fatalf("validity %s, want under 14 days", d)
	}
	var info Info
	getJSON(t, s.URL()+"/v1/info", &info)
	if info.WebTransportURL != s.WebTransportURL() || !strings.HasPrefix(info.WebTransportURL, "https://127.0.0.1:") ||
		info.CertHash == nil || info.CertHash.Hex != ci.Hex {
		t.Fatalf("info %+v", info)
	}
	off := newTestServer(t, func(c *Config, _ *signal.Config) { c.WebTransportAddr = "" }, nil)
	rsp, err := http.Get(off.URL() + "/v1/cert-hash")
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	if rsp.StatusCode != http.StatusNotFound || off.WebTransportURL() != "" {
		t.Fatalf("webtransport off: cert-hash %d, url %q", rsp.StatusCode, off.WebTransportURL())
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	rsp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	if rsp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, rsp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

// TestResumeAcrossTransports joins over WebSocket, drops it, and resumes
// the same session over WebTransport.
func TestResumeAcrossTransports(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.SignalURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := protocol.Request("1", protocol.TypeJoin, protocol.JoinRequest{Token: testToken(t, "r4", "dave")})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	var jr protocol.JoinResponse
	for jr.Session.ID == "" {
		_, raw, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, err := protocol.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if m.IsResponse() && m.ID == "1" {
			if err := protocol.DecodeData(&m, &jr); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = ws.CloseNow()
	c, _, err := dialWT(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	c.request("r", protocol.TypeResume, protocol.ResumeRequest{SessionID: jr.Session.ID, ResumeToken: jr.Session.ResumeToken})
	m := c.response("r")
	var again protocol.JoinResponse
	if err := protocol.DecodeData(&m, &again); err != nil || again.Participant.ID != jr.Participant.ID {
		t.Fatalf("resume over webtransport: %v (%v), want participant %s", again.Participant, err, jr.Participant.ID)
	}
}
