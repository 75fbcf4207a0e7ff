package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/parleyhq/parley/core"
)

// SignalPath is where both transports serve signaling.
const SignalPath = "/v1/signal"

const (
	// wtCloseGrace is how long a closed control stream waits for the client
	// to close the session itself (having read everything up to our FIN)
	// before the server closes it, which resets unread data.
	wtCloseGrace = time.Second
	// wtReadChunk is the least free space offered to one stream read; the
	// line limit is checked after every read, so an over-long line is
	// refused without waiting for its end.
	wtReadChunk = 4 << 10
	// Session error codes sent in CLOSE_WEBTRANSPORT_SESSION.
	wtCodeNormal    webtransport.SessionErrorCode = 0
	wtCodeNoControl webtransport.SessionErrorCode = 1
)

// wtListener is the HTTP/3 listener carrying WebTransport signaling.
type wtListener struct {
	srv  *webtransport.Server
	conn net.PacketConn
	done chan struct{}
	// closing counts connections waiting out wtCloseGrace.
	closing sync.WaitGroup
}

// newWebTransport prepares the HTTP/3 server and its certificate; it
// listens in startWebTransport. It does nothing when WebTransport is off.
func (s *Server) newWebTransport() error {
	if s.cfg.WebTransportAddr == "" {
		return nil
	}
	certs, err := newCertSource(s.cfg.TLSCert, s.cfg.TLSKey, s.cfg.CertHosts, s.log)
	if err != nil {
		return err
	}
	s.certs = certs
	h3 := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{
			MinVersion: tls.VersionTLS13,
			// through s.certs, so tests may swap the source before Start
			GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certs.getCertificate(h) },
		}),
		QUICConfig: &quic.Config{
			EnableDatagrams: true, EnableStreamResetPartialDelivery: true,
			MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 10 * time.Second,
		},
		Handler: http.HandlerFunc(s.handleWebTransport),
	}
	webtransport.ConfigureHTTP3Server(h3)
	s.wt = &wtListener{
		srv:  &webtransport.Server{H3: h3, CheckOrigin: s.webTransportOriginAllowed},
		done: make(chan struct{}),
	}
	return nil
}

// startWebTransport opens the UDP socket and serves HTTP/3 on it.
func (s *Server) startWebTransport() error {
	if s.wt == nil {
		return nil
	}
	addr, err := net.ResolveUDPAddr("udp", s.cfg.WebTransportAddr)
	if err != nil {
		return fmt.Errorf("edge: webtransport addr %s: %w", s.cfg.WebTransportAddr, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("edge: listen udp %s: %w", s.cfg.WebTransportAddr, err)
	}
	s.wt.conn = conn
	ready := &servingConn{UDPConn: conn, serving: make(chan struct{})}
	go func() {
		defer close(s.wt.done)
		err := s.wt.srv.Serve(ready)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) &&
			!errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
			s.log.Error("webtransport server stopped", "err", err)
		}
	}()
	// Return once Serve has set the socket up (or soon anyway): webtransport-go's
	// Close must not run before Serve has registered itself (a WaitGroup Add
	// racing Wait, reported by the race detector when a server stops right
	// after it started).
	select {
	case <-ready.serving:
	case <-s.wt.done:
	case <-time.After(time.Second):
	}
	return nil
}

// servingConn tells when the QUIC listener takes the socket over: quic-go
// asks for the raw connection (socket options, batched reads) as it starts
// listening, after webtransport-go's Serve registered itself.
type servingConn struct {
	*net.UDPConn
	once    sync.Once
	serving chan struct{}
}

// SyscallConn implements syscall.Conn, noting that the listener started.
func (c *servingConn) SyscallConn() (syscall.RawConn, error) {
	c.once.Do(func() { close(c.serving) })
	return c.UDPConn.SyscallConn()
}

// closeWebTransport lets closing sessions flush (bounded by ctx), then
// closes every HTTP/3 connection and the socket.
func (s *Server) closeWebTransport(ctx context.Context) {
	if s.certs != nil {
		s.certs.Close()
	}
	if s.wt == nil {
		return
	}
	flushed := make(chan struct{})
	go func() { s.wt.closing.Wait(); close(flushed) }()
	select {
	case <-flushed:
	case <-ctx.Done():
	}
	_ = s.wt.srv.Close()
	if s.wt.conn != nil {
		_ = s.wt.conn.Close()
		<-s.wt.done
	}
}

// WebTransportAddr returns the UDP address HTTP/3 listens on, or nil when
// WebTransport is off or not started.
func (s *Server) WebTransportAddr() net.Addr {
	if s.wt == nil || s.wt.conn == nil {
		return nil
	}
	return s.wt.conn.LocalAddr()
}

// WebTransportURL returns the WebTransport signaling URL, or "" when
// WebTransport is off. An unspecified listen address is named 127.0.0.1
// (browsers try ::1 first for "localhost").
func (s *Server) WebTransportURL() string {
	addr, ok := s.WebTransportAddr().(*net.UDPAddr)
	if !ok {
		return ""
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, fmt.Sprint(addr.Port)) + SignalPath
}

// CertInfo describes the HTTP/3 certificate, or returns false when
// WebTransport is off.
func (s *Server) CertInfo() (CertInfo, bool) {
	if s.certs == nil {
		return CertInfo{}, false
	}
	return s.certs.info(), true
}

// handleCertHash serves GET /v1/cert-hash.
func (s *Server) handleCertHash(w http.ResponseWriter, _ *http.Request) {
	ci, ok := s.CertInfo()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "webtransport is disabled"})
		return
	}
	writeJSON(w, http.StatusOK, ci)
}

// webTransportOriginAllowed admits requests without an Origin (non-browser
// clients), any origin in Dev, a page on the same host (any port: the page
// comes from the HTTP port), a loopback page connecting to a loopback
// address, and origins whose host matches Config.AllowedOrigins.
func (s *Server) webTransportOriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.cfg.Dev {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	reqHost := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		reqHost = h
	}
	reqHost = strings.Trim(reqHost, "[]")
	if strings.EqualFold(u.Hostname(), reqHost) || isLoopbackHost(u.Hostname()) && isLoopbackHost(reqHost) {
		return true
	}
	for _, p := range s.cfg.AllowedOrigins {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// handleWebTransport upgrades a CONNECT to /v1/signal, accepts the
// client's control stream and runs the signaling session on it.
func (s *Server) handleWebTransport(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != SignalPath {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if !s.webTransportOriginAllowed(r) {
		s.log.Info("webtransport origin rejected", "origin", r.Header.Get("Origin"), "host", r.Host, "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	sess, err := s.wt.srv.Upgrade(w, r)
	if err != nil {
		s.log.Debug("webtransport upgrade failed", "remote", r.RemoteAddr, "err", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	actx, cancel := context.WithTimeout(s.ctx, s.sig.Config().AuthTimeout)
	str, err := sess.AcceptStream(actx)
	cancel()
	if err != nil {
		s.log.Debug("webtransport session opened no control stream", "remote", r.RemoteAddr, "err", err)
		_ = sess.CloseWithError(wtCodeNoControl, "no control stream")
		return
	}
	s.wt.closing.Add(1)
	c := &wtConn{sess: sess, str: str, limit: s.sig.Config().MaxMessageSize, done: s.wt.closing.Done}
	// Once the session is gone nothing more can be read: wake the reader,
	// which webtransport-go may otherwise park for good after a reset.
	stop := context.AfterFunc(sess.Context(), func() { _ = str.SetReadDeadline(time.Now()) })
	defer stop()
	s.sig.Serve(s.ctx, c)
	_ = c.Close("session ended")
}

// wtConn adapts a WebTransport control stream to signal.Conn: one JSON
// message per \n-terminated line.
type wtConn struct {
	sess  *webtransport.Session
	str   *webtransport.Stream
	limit int64
	// buf holds bytes read but not yet returned; buf[:scanned] has no \n.
	buf     []byte
	scanned int

	once sync.Once
	done func()
}

// Read returns the next non-empty line without its terminator (a trailing
// \r is dropped too), or an error matching core.ErrMessageTooLarge as soon
// as a line exceeds the limit.
func (c *wtConn) Read(ctx context.Context) ([]byte, error) {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.str.SetReadDeadline(time.Now())
		close(fired)
	})
	msg, err := c.readLine()
	if !stop() {
		<-fired
		_ = c.str.SetReadDeadline(time.Time{})
		if err != nil {
			return nil, fmt.Errorf("webtransport read: %w", errors.Join(ctx.Err(), err))
		}
	}
	return msg, err
}

func (c *wtConn) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.scanned:], '\n'); i >= 0 {
			end := c.scanned + i
			msg := bytes.TrimSuffix(c.buf[:end], []byte("\r"))
			if int64(len(msg)) > c.limit {
				return nil, core.ErrMessageTooLarge
			}
			out := bytes.Clone(msg)
			c.buf = c.buf[:copy(c.buf, c.buf[end+1:])]
			c.scanned = 0
			if len(out) == 0 {
				continue // blank lines are allowed between messages
			}
			return out, nil
		}
		c.scanned = len(c.buf)
		if int64(len(c.buf)) > c.limit+1 { // +1: room for a \r
			return nil, core.ErrMessageTooLarge
		}
		if cap(c.buf)-len(c.buf) < wtReadChunk {
			c.buf = slices.Grow(c.buf, wtReadChunk)
		}
		n, err := c.str.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err != nil && n == 0 {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("webtransport read: control stream ended: %w", err)
			}
			return nil, fmt.Errorf("webtransport read: %w", err)
		}
	}
}

// Write sends msg as one line. Messages are compact JSON; one that
// contains a newline is compacted first.
func (c *wtConn) Write(ctx context.Context, msg []byte) error {
	line := make([]byte, 0, len(msg)+1)
	if bytes.IndexByte(msg, '\n') >= 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, msg); err != nil {
			return fmt.Errorf("webtransport write: message with a newline is not JSON: %w", err)
		}
		msg = buf.Bytes()
	}
	line = append(append(line, msg...), '\n')
	if dl, ok := ctx.Deadline(); ok {
		_ = c.str.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.str.SetWriteDeadline(time.Now()) })
	defer stop()
	if _, err := c.str.Write(line); err != nil {
		return fmt.Errorf("webtransport write: %w", errors.Join(ctx.Err(), err))
	}
	return nil
}

// Close stops reading, ends the control stream after what was written
// (FIN), and closes the session once the client has closed it or after
// wtCloseGrace, so a final closing event reaches the client.
func (c *wtConn) Close(reason string) error {
	c.once.Do(func() {
		c.str.CancelRead(0)
		// CancelRead does not wake a read parked after the client reset
		// the stream (WT_SESSION_GONE); a deadline does.
		_ = c.str.SetReadDeadline(time.Now())
		_ = c.str.Close()
		go func() {
			defer c.done()
			t := time.NewTimer(wtCloseGrace)
			defer t.Stop()
			select {
			case <-c.sess.Context().Done():
			case <-t.C:
			}
			if len(reason) > 120 {
				reason = reason[:120]
			}
			_ = c.sess.CloseWithError(wtCodeNormal, reason)
		}()
	})
	return nil
}
