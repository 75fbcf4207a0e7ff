package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/sdk/client"
)

// transports are the signaling transports the call suite runs over.
var transports = []client.Transport{client.TransportWebSocket, client.TransportWebTransport}

// urlFor returns n's signaling URL for tr.
func urlFor(t testing.TB, n *node.Node, tr client.Transport) string {
	t.Helper()
	if tr != client.TransportWebTransport {
		return n.SignalURL()
	}
	u := n.WebTransportURL()
	if u == "" {
		t.Fatal("the node has WebTransport off")
	}
	return u
}

// certHashes returns the HTTP/3 certificate hashes n announces.
func certHashes(t testing.TB, n *node.Node) [][]byte {
	t.Helper()
	ci, ok := n.CertInfo()
	if !ok {
		t.Fatal("the node has no HTTP/3 certificate")
	}
	var out [][]byte
	for _, h := range ci.Hashes {
		b, err := hex.DecodeString(h.Hex)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// optsFor returns the client options for signaling over tr to n: the
// transport, and for WebTransport the generated certificate pinned.
func optsFor(t testing.TB, n *node.Node, tr client.Transport) []client.Option {
	t.Helper()
	opts := []client.Option{client.WithTransport(tr)}
	if tr == client.TransportWebTransport {
		opts = append(opts, client.WithCertHash(certHashes(t, n)...))
	}
	return opts
}

// rawWT is a bare WebTransport session speaking the protocol by hand, one
// line per message, for bad input and resume tests.
type rawWT struct {
	t    testing.TB
	sess *webtransport.Session
	str  *webtransport.Stream
	r    *bufio.Reader
}

func dialRawWT(t testing.TB, n *node.Node) *rawWT {
	t.Helper()
	hashes := certHashes(t, n)
	tr := &webtransport.Transport{
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // pinned by hash below
			VerifyConnection: func(cs tls.ConnectionState) error {
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if !slices.ContainsFunc(hashes, func(h []byte) bool { return bytes.Equal(h, sum[:]) }) {
					return fmt.Errorf("certificate %x not pinned", sum)
				}
				return nil
			},
		},
		QUICConfig: &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, sess, err := tr.Dial(ctx, urlFor(t, n, client.TransportWebTransport), nil)
	if err != nil {
		t.Fatalf("webtransport dial: %v", err)
	}
	t.Cleanup(func() { _ = sess.CloseWithError(0, "") })
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open control stream: %v", err)
	}
	return &rawWT{t: t, sess: sess, str: str, r: bufio.NewReader(str)}
}

// sendRaw writes b as it is: the caller adds the line end.
func (r *rawWT) sendRaw(b []byte) {
	r.t.Helper()
	_ = r.str.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.str.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawWT) request(id, typ string, data any) {
	r.t.Helper()
	b, err := protocol.Request(id, typ, data)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendRaw(append(b, '\n'))
}

// next reads the next message; ok is false when the stream ended.
func (r *rawWT) next() (protocol.Message, bool) {
	r.t.Helper()
	return r.nextBefore(time.Now().Add(5 * time.Second))
}

func (r *rawWT) nextBefore(deadline time.Time) (protocol.Message, bool) {
	r.t.Helper()
	_ = r.str.SetReadDeadline(deadline)
	line, err := r.r.ReadBytes('\n')
	if err != nil {
		return protocol.Message{}, false
	}
	m, err := protocol.Decode(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		r.t.Fatalf("server sent undecodable %q: %v", line, err)
	}
	return m, true
}

// response skips events until the response with id arrives.
func (r *rawWT) response(id string) protocol.Message {
	r.t.Helper()
	for {
		m, ok := r.next()
		if !ok {
			r.t.Fatalf("stream ended while waiting for response %q", id)
		}
		if m.IsResponse() && m.ID == id {
			return m
		}
	}
}

// nextEvent skips messages until an event of type typ arrives.
func (r *rawWT) nextEvent(typ string) protocol.Message {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, ok := r.nextBefore(deadline)
		if !ok {
			r.t.Fatalf("stream ended while waiting for %s", typ)
		}
		if !m.IsResponse() && m.Type == typ {
			return m
		}
	}
}
