package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"
)

const (
	// wtReadBuffer is the read buffer of a WebTransport control stream; a
	// line longer than that is assembled from several reads.
	wtReadBuffer = 64 << 10
	// wtStopGrace is how long a session whose server stopped reading stays
	// open for the client to read what the server sent before.
	wtStopGrace = 2 * time.Second
)

// errLineTooLong is returned by a read whose line exceeds the limit. It is
// a local error, not a *core.Error, so a resume after it is retried.
var errLineTooLong = fmt.Errorf("webtransport: message longer than %d bytes", maxMessageSize)

// wtConn is a signaling session over WebTransport: one bidirectional stream
// opened by the client, one JSON message per \n-terminated line.
type wtConn struct {
	sess  *webtransport.Session
	str   *webtransport.Stream
	lines *lineReader

	wmu       sync.Mutex // one line written at a time
	closeOnce sync.Once
}

// dialWebTransport opens a session to url and its control stream.
func dialWebTransport(ctx context.Context, url string, cfg *config) (*wtConn, error) {
	tr := &webtransport.Transport{
		TLSClientConfig: cfg.clientTLS(http3.NextProtoH3),
		QUICConfig:      cfg.clientQUIC(),
		DialAddr:        dialQUIC,
	}
	_, sess, err := tr.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		_ = sess.CloseWithError(0, "")
		return nil, fmt.Errorf("open control stream: %w", err)
	}
	return newWTConn(sess, str, maxMessageSize), nil
}

// dialQUIC resolves addr before quic.DialAddr binds a UDP socket, which it
// would leak on a failed lookup.
func dialQUIC(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	return quic.DialAddr(ctx, addr, tc, qc)
}

func newWTConn(sess *webtransport.Session, str *webtransport.Stream, limit int) *wtConn {
	return &wtConn{sess: sess, str: str, lines: newLineReader(str, limit)}
}

func (c *wtConn) readMessage() ([]byte, error) {
	msg, err := c.lines.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("webtransport: control stream ended: %w", err)
		}
		return nil, fmt.Errorf("webtransport read: %w", err)
	}
	return msg, nil
}

// writeMessage sends msg as one line. Protocol messages are compact JSON;
// one containing a newline is compacted, so it cannot break the framing.
func (c *wtConn) writeMessage(ctx context.Context, msg []byte) error {
	line, err := asLine(msg)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline() // zero: no deadline
	_ = c.str.SetWriteDeadline(dl)
	if _, err := c.str.Write(line); err != nil {
		var se *webtransport.StreamError
		if errors.As(err, &se) && se.Remote {
			// The server stopped reading: it is closing the connection.
			// What it sent before (a response, a closing event) is still
			// to be read, so the session stays until the server ends it,
			// or for wtStopGrace at most. Later writes fail the same way.
			time.AfterFunc(wtStopGrace, func() { _ = c.close() })
		} else {
			// A partial line would corrupt the framing of the next one.
			_ = c.close()
		}
		return fmt.Errorf("webtransport write: %w", err)
	}
	return nil
}

// close ends the session (and its QUIC connection) at once. The read
// deadline wakes a read that webtransport-go parks waiting for the session
// to end after the server reset the stream.
func (c *wtConn) close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.sess.CloseWithError(0, "")
		_ = c.str.SetReadDeadline(time.Now())
	})
	return err
}

// asLine returns msg followed by \n, compacting it first if it contains a
// newline.
func asLine(msg []byte) ([]byte, error) {
	if bytes.IndexByte(msg, '\n') >= 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, msg); err != nil {
			return nil, fmt.Errorf("webtransport write: message with a newline is not JSON: %w", err)
		}
		msg = buf.Bytes()
	}
	line := make([]byte, 0, len(msg)+1)
	return append(append(line, msg...), '\n'), nil
}

// lineReader splits a stream into \n-terminated lines of at most limit
// bytes (a trailing \r is dropped, blank lines are skipped). A line is
// refused as soon as it grows past the limit, without waiting for its end.
type lineReader struct {
	br    *bufio.Reader
	limit int
}

func newLineReader(r io.Reader, limit int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, min(wtReadBuffer, limit+2)), limit: limit}
}

func (l *lineReader) next() ([]byte, error) {
	var line []byte
	for {
		frag, err := l.br.ReadSlice('\n')
		line = append(line, frag...)
		switch {
		case err == nil:
			line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
			if len(line) > l.limit {
				return nil, errLineTooLong
			}
			if len(line) == 0 {
				continue // blank lines may separate messages
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) > l.limit+1 { // +1: a \r may end it
				return nil, errLineTooLong
			}
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, fmt.Errorf("stream ended inside a message: %w", io.ErrUnexpectedEOF)
		default:
			return nil, err
		}
	}
}

// clientQUIC is the QUIC configuration of WebTransport dials: the one given
// with WithQUICConfig (or quic-go's defaults) with what WebTransport needs
// turned on.
func (cfg *config) clientQUIC() *quic.Config {
	qc := &quic.Config{}
	if cfg.quic != nil {
		qc = cfg.quic.Clone()
	}
	qc.EnableDatagrams = true
	qc.EnableStreamResetPartialDelivery = true
	return qc
}
