package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/quic-go/webtransport-go"
)

// wtPeer is the server's end of one test session, driven by hand.
type wtPeer struct {
	sess *webtransport.Session
	str  *webtransport.Stream
}

// newWTPeerServer starts a WebTransport server that hands each session's
// control stream to the test through the returned channel; the session
// stays open until the test closes it or the server shuts down.
func newWTPeerServer(t *testing.T, cert testCert) (*wtServer, <-chan wtPeer) {
	peers := make(chan wtPeer, 4)
	srv := newWTServer(t, cert, func(sess *webtransport.Session, str *webtransport.Stream) {
		peers <- wtPeer{sess: sess, str: str}
		<-sess.Context().Done()
	})
	return srv, peers
}

func dialTestWT(t *testing.T, url string, opts ...Option) (*wtConn, error) {
	t.Helper()
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialWebTransport(ctx, url, &cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.close() })
	}
	return c, err
}

// openWT dials srv with its certificate pinned, sends a hello line so the
// server sees the control stream, and returns both ends.
func openWT(t *testing.T, srv *wtServer, peers <-chan wtPeer) (*wtConn, wtPeer) {
	t.Helper()
	c, err := dialTestWT(t, srv.url(), WithCertHash(srv.cert.hash))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.writeMessage(ctxT(t), []byte(`{"hello":1}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-peers:
		line, err := bufio.NewReader(p.str).ReadString('\n')
		if err != nil || line != "{\"hello\":1}\n" {
			t.Fatalf("server read %q, %v", line, err)
		}
		return c, p
	case <-time.After(5 * time.Second):
		t.Fatal("no session at the server")
		return nil, wtPeer{}
	}
}

func TestWTConnFraming(t *testing.T) {
	srv, peers := newWTPeerServer(t, validCert(t))
	c, p := openWT(t, srv, peers)
	// Two messages in one write, CRLF, blank lines, a message split across
	// writes, one longer than the read buffer.
	long := `{"pad":"` + strings.Repeat("x", 3*wtReadBuffer) + `"}`
	writes := []string{"{\"a\":1}\n{\"b\":2}\r\n", "\n\r\n", `{"c":`, "3}\n", long[:1000], long[1000:] + "\n"}
	go func() {
		for _, w := range writes {
			_, _ = p.str.Write([]byte(w))
			time.Sleep(time.Millisecond)
		}
	}()
	for _, want := range []string{`{"a":1}`, `{"b":2}`, `{"c":3}`, long} {
		got, err := c.readMessage()
		if err != nil || string(got) != want {
			t.Fatalf("read %.40q..., %v; want %.40q...", got, err, want)
		}
	}
	// The end of the stream after a whole line ends reading with io.EOF.
	_ = p.str.Close()
	if _, err := c.readMessage(); !errors.Is(err, io.EOF) {
		t.Fatalf("read after FIN: %v", err)
	}
}

func TestWTConnStreamEndsMidLine(t *testing.T) {
	srv, peers := newWTPeerServer(t, validCert(t))
	c, p := openWT(t, srv, peers)
	_, _ = p.str.Write([]byte(`{"cut":`))
	_ = p.str.Close()
	if _, err := c.readMessage(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read of a cut line: %v", err)
	}
}

func TestWTConnLineTooLong(t *testing.T) {
	srv, peers := newWTPeerServer(t, validCert(t))
	c, p := openWT(t, srv, peers)
	c.lines = newLineReader(c.str, 1000)
	// An exact fit is accepted; a line over the limit is refused before it
	// ends (the server never sends its newline).
	fit := `"` + strings.Repeat("y", 998) + `"`
	_, _ = p.str.Write([]byte(fit + "\r\n" + strings.Repeat("z", 5000)))
	if got, err := c.readMessage(); err != nil || string(got) != fit {
		t.Fatalf("line of exactly the limit: %d bytes, %v", len(got), err)
	}
	if _, err := c.readMessage(); !errors.Is(err, errLineTooLong) {
		t.Fatalf("over-long line: %v", err)
	}
}

func TestWTConnConcurrentWritesStayWhole(t *testing.T) {
	srv, peers := newWTPeerServer(t, validCert(t))
	c, p := openWT(t, srv, peers)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				msg := fmt.Sprintf(`{"w":%d,"i":%d,"pad":%q}`, w, i, strings.Repeat("p", 3000))
				if err := c.writeMessage(ctxT(t), []byte(msg)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	r := bufio.NewReader(p.str)
	next := make([]int, writers)
	for range writers * each {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ W, I int }
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("interleaved line %.60q: %v", line, err)
		}
		if m.I != next[m.W] {
			t.Fatalf("writer %d: message %d after %d", m.W, m.I, next[m.W]-1)
		}
		next[m.W]++
	}
	wg.Wait()
}

func TestWTConnWriteNewlines(t *testing.T) {
	line, err := asLine([]byte("{\n  \"a\": \"b\\nc\"\n}"))
	if err != nil || string(line) != "{\"a\":\"b\\nc\"}\n" {
		t.Fatalf("asLine = %q, %v", line, err)
	}
	if _, err := asLine([]byte("not\njson")); err == nil {
		t.Fatal("a non-JSON message with a newline was accepted")
	}
}

func TestWTConnCloseUnblocksRead(t *testing.T) {
	srv, peers := newWTPeerServer(t, validCert(t))
	c, p := openWT(t, srv, peers)
	read := make(chan error, 1)
	go func() {
		_, err := c.readMessage()
		read <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := c.close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	_ = c.close() // idempotent
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("read after close returned a message")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not unblock the read")
	}
	if err := c.writeMessage(ctxT(t), []byte(`{}`)); err == nil {
		t.Fatal("write after close succeeded")
	}
	select { // the server sees the session end
	case <-p.sess.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not see the session close")
	}
}

// A server that stops reading (it is closing) makes writes fail, but what
// it sent before is still read: a leave response must not be lost to a
// concurrent write.
func TestWTWriteRefusedKeepsWhatWasSent(t *testing.T) {
	srv, peers := newWTPeerServer(t, validCert(t))
	c, p := openWT(t, srv, peers)
	p.str.CancelRead(0)
	_, _ = p.str.Write([]byte("{\"last\":1}\n"))
	deadline := time.Now().Add(5 * time.Second)
	for c.writeMessage(ctxT(t), []byte(`{}`)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("writes still succeed after the server stopped reading")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b, err := c.readMessage(); err != nil || string(b) != `{"last":1}` {
		t.Fatalf("read after a refused write: %q, %v", b, err)
	}
	_ = p.str.Close()
	if _, err := c.readMessage(); !errors.Is(err, io.EOF) {
		t.Fatalf("read after FIN: %v", err)
	}
}

func TestWTPeerClosingSessionFailsRead(t *testing.T) {
	srv, peers := newWTPeerServer(t, validCert(t))
	c, p := openWT(t, srv, peers)
	_ = p.sess.CloseWithError(7, "bye")
	_, err := c.readMessage()
	var se *webtransport.SessionError
	if !errors.As(err, &se) || se.ErrorCode != 7 {
		t.Fatalf("read after the server closed the session: %v", err)
	}
}

func TestWTCertificateVerification(t *testing.T) {
	good := validCert(t)
	srv, peers := newWTPeerServer(t, good)
	other := validCert(t)
	roots := x509.NewCertPool()
	roots.AddCert(good.leaf)
	for _, tc := range []struct {
		name string
		opts []Option
		want string // "" for success, else part of the error
	}{
		{"pinned", []Option{WithCertHash(good.hash)}, ""},
		{"pinned among several", []Option{WithCertHash(other.hash, good.hash)}, ""},
		{"trusted root", []Option{WithTLSConfig(&tls.Config{RootCAs: roots})}, ""},
		{"pin replaces the chain check", []Option{WithTLSConfig(&tls.Config{RootCAs: x509.NewCertPool()}), WithCertHash(good.hash)}, ""},
		{"wrong pin", []Option{WithCertHash(other.hash)}, "is not pinned"},
		{"no pin, untrusted", nil, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialTestWT(t, srv.url(), tc.opts...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("dial: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("dial error %v, want one saying %q", err, tc.want)
			case err == nil:
				_ = c.writeMessage(ctxT(t), []byte("{}"))
				p := <-peers
				_ = p.sess.CloseWithError(0, "")
			}
		})
	}
}

func TestWTPinnedCertificateMustBeValidNow(t *testing.T) {
	expired := newTestCert(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	srv, _ := newWTPeerServer(t, expired)
	_, err := dialTestWT(t, srv.url(), WithCertHash(expired.hash))
	if err == nil || !strings.Contains(err.Error(), "not valid now") {
		t.Fatalf("dial with an expired pinned certificate: %v", err)
	}
}

func TestWTDialFailures(t *testing.T) {
	srv, _ := newWTPeerServer(t, validCert(t))
	if _, err := dialTestWT(t, strings.Replace(srv.url(), "/v1/signal", "/nope", 1), WithCertHash(srv.cert.hash)); err == nil ||
		!strings.Contains(err.Error(), "404") {
		t.Fatalf("dial of a missing path: %v", err)
	}
	if _, err := dialTestWT(t, "https://nosuchhost.invalid:4433/v1/signal"); err == nil {
		t.Fatal("dial of an unknown host succeeded")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cfg := defaultConfig()
	WithCertHash(srv.cert.hash)(&cfg)
	if _, err := dialWebTransport(ctx, "https://127.0.0.1:9/v1/signal", &cfg); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("dial of a closed port: %v after %s", err, time.Since(start))
	}
}

func TestWebSocketOverTLSHonoursPin(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		_ = ws.Write(r.Context(), websocket.MessageText, []byte(`{"hi":1}`))
		_, _, _ = ws.Read(r.Context())
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().Raw)
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/v1/signal"
	dial := func(opts ...Option) (*wsConn, error) {
		cfg := defaultConfig()
		for _, o := range opts {
			o(&cfg)
		}
		return dialWebSocket(ctxT(t), url, &cfg, slog.New(slog.DiscardHandler))
	}
	c, err := dial(WithCertHash(sum[:]))
	if err != nil {
		t.Fatalf("pinned wss: %v", err)
	}
	if b, err := c.readMessage(); err != nil || string(b) != `{"hi":1}` {
		t.Fatalf("read %q, %v", b, err)
	}
	_ = c.close()
	wrong := sha256.Sum256([]byte("another certificate"))
	if _, err := dial(WithCertHash(wrong[:])); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("wss with a wrong pin: %v", err)
	}
	if _, err := dial(); err == nil {
		t.Fatal("wss to an untrusted certificate without a pin succeeded")
	}
}

func TestTransportChoice(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opt  Transport
		want Transport // TransportAuto: an error
	}{
		{"ws://h/v1/signal", TransportAuto, TransportWebSocket},
		{"wss://h/v1/signal", TransportAuto, TransportWebSocket},
		{"http://h/v1/signal", TransportAuto, TransportWebSocket},
		{"https://h/v1/signal", TransportAuto, TransportWebTransport},
		{"https://h/v1/signal", TransportWebSocket, TransportWebSocket},
		{"wss://h/v1/signal", TransportWebTransport, TransportAuto},
		{"ftp://h/v1/signal", TransportAuto, TransportAuto},
		{"ws://h/v1/signal", Transport(9), TransportAuto},
	} {
		c, err := New(tc.url, "tok", WithTransport(tc.opt))
		if tc.want == TransportAuto {
			if err == nil {
				t.Errorf("%s over %v accepted", tc.url, tc.opt)
			}
			continue
		}
		if err != nil || c.Transport() != tc.want {
			t.Errorf("%s over %v: %v, %v; want %v", tc.url, tc.opt, c, err, tc.want)
			continue
		}
		c.Close()
	}
	if _, err := New("https://h/v1/signal", "tok", WithCertHash([]byte("short"))); err == nil {
		t.Error("a 5-byte certificate hash was accepted")
	}
}

func TestFetchCertHashes(t *testing.T) {
	a, b := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	body := fmt.Sprintf(`{"algorithm":"sha-256","hex":"%x","pin":true,"hashes":[`+
		`{"algorithm":"sha-256","hex":"%x"},{"algorithm":"sha-1","hex":"00"},{"algorithm":"sha-256","hex":"%x"}]}`, a, a, b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/cert-hash" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	got, err := FetchCertHashes(ctxT(t), srv.URL+"/v1/cert-hash")
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], a[:]) || !bytes.Equal(got[1], b[:]) {
		t.Fatalf("hashes %x, %v", got, err)
	}
	if _, err := FetchCertHashes(ctxT(t), srv.URL+"/other"); err == nil {
		t.Fatal("a 404 gave hashes")
	}
}
