package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"
)

// testCert is a self-signed ECDSA certificate for 127.0.0.1 and localhost,
// valid from notBefore to notAfter, with the SHA-256 of its DER leaf.
type testCert struct {
	cert tls.Certificate
	leaf *x509.Certificate
	hash []byte
}

func newTestCert(t testing.TB, notBefore, notAfter time.Time) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "parley test"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return testCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf: leaf, hash: sum[:]}
}

// validCert is a certificate valid for an hour either side of now.
func validCert(t testing.TB) testCert {
	return newTestCert(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// wtServer is a real WebTransport (HTTP/3) server on a loopback UDP port.
// Every session's first bidirectional stream goes to handle, which runs on
// the session's own goroutine; the session is closed when handle returns.
type wtServer struct {
	srv  *webtransport.Server
	conn net.PacketConn
	cert testCert
	done chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	sessions []*webtransport.Session
}

func newWTServer(t testing.TB, cert testCert, handle func(*webtransport.Session, *webtransport.Stream)) *wtServer {
	t.Helper()
	s := &wtServer{cert: cert, done: make(chan struct{})}
	h3 := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert.cert}}),
		QUICConfig: &quic.Config{
			EnableDatagrams: true, EnableStreamResetPartialDelivery: true,
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/signal" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			s.session(w, r, handle)
		}),
	}
	webtransport.ConfigureHTTP3Server(h3)
	s.srv = &webtransport.Server{H3: h3}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.conn = conn
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(conn)
	}()
	t.Cleanup(s.close)
	return s
}

func (s *wtServer) session(w http.ResponseWriter, r *http.Request, handle func(*webtransport.Session, *webtransport.Stream)) {
	sess, err := s.srv.Upgrade(w, r)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	str, err := sess.AcceptStream(ctx)
	cancel()
	if err != nil {
		_ = sess.CloseWithError(1, "no control stream")
		return
	}
	handle(sess, str)
	_ = sess.CloseWithError(0, "")
}

// url is the server's signaling URL.
func (s *wtServer) url() string {
	return fmt.Sprintf("https://%s/v1/signal", s.conn.LocalAddr())
}

// dropAll closes every session abruptly.
func (s *wtServer) dropAll() {
	s.mu.Lock()
	sessions := s.sessions
	s.sessions = nil
	s.mu.Unlock()
	for _, sess := range sessions {
		_ = sess.CloseWithError(2, "dropped")
	}
}

func (s *wtServer) close() {
	s.dropAll()
	_ = s.srv.Close()
	_ = s.conn.Close()
	<-s.done
	s.wg.Wait()
}

// wtServerConn is the server's end of a fake session's control stream,
// framed by the client's own line reader and writer.
func wtServerConn(sess *webtransport.Session, str *webtransport.Stream) *wtConn {
	return newWTConn(sess, str, 1<<20)
}

// finishWT ends the control stream after what was written (FIN), as the
// Parley server does, and closes the session once the client did or after
// a second. Reading goes on meanwhile: a reader that gave up would close
// the session, and a session closed early discards what the client has not
// read yet.
func finishWT(c *wtConn) {
	_ = c.str.Close()
	select {
	case <-c.sess.Context().Done():
	case <-time.After(time.Second):
	}
	_ = c.close()
}
