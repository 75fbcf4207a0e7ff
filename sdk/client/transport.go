package client

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/coder/websocket"
)

// Transport selects what carries the signaling connection. Both carry the
// same protocol (docs/protocol.md) and the client behaves the same on either:
// requests, events, keep-alive, reconnection and resumption.
type Transport int

const (
	// TransportAuto picks the transport by the URL's scheme: ws, wss and
	// http use WebSocket, https uses WebTransport.
	TransportAuto Transport = iota
	// TransportWebSocket carries signaling over a WebSocket, one message per
	// text frame. It accepts ws, wss, http and https URLs.
	TransportWebSocket
	// TransportWebTransport carries signaling over WebTransport (HTTP/3):
	// one bidirectional stream per session, one message per line. It needs
	// an https URL naming the server's WebTransport (UDP) port.
	TransportWebTransport
)

// String returns the transport's lowercase name.
func (t Transport) String() string {
	switch t {
	case TransportAuto:
		return "auto"
	case TransportWebSocket:
		return "websocket"
	case TransportWebTransport:
		return "webtransport"
	}
	return "transport(" + strconv.Itoa(int(t)) + ")"
}

// resolveTransport decides the transport for a URL with scheme, given the
// one asked for with WithTransport.
func resolveTransport(want Transport, scheme string) (Transport, error) {
	switch want {
	case TransportAuto:
		switch scheme {
		case "ws", "wss", "http":
			return TransportWebSocket, nil
		case "https":
			return TransportWebTransport, nil
		}
	case TransportWebSocket:
		switch scheme {
		case "ws", "wss", "http", "https":
			return TransportWebSocket, nil
		}
	case TransportWebTransport:
		if scheme == "https" {
			return TransportWebTransport, nil
		}
		return 0, fmt.Errorf("url scheme %q: webtransport needs https", scheme)
	default:
		return 0, fmt.Errorf("unknown %v", want)
	}
	return 0, fmt.Errorf("url scheme %q: want ws, wss or https", scheme)
}

// transportConn carries whole signaling messages over one connection. The
// WebSocket and WebTransport implementations behave alike, so nothing above
// this interface knows which one it uses.
type transportConn interface {
	// readMessage blocks until the next message arrives or the connection
	// fails or is closed. Only one goroutine reads.
	readMessage() ([]byte, error)
	// writeMessage sends one message; ctx's deadline bounds the write. It is
	// safe for concurrent use. A failed write leaves the connection closed.
	writeMessage(ctx context.Context, msg []byte) error
	// close tears the connection down at once, unblocking readMessage and
	// writeMessage. It may be called more than once.
	close() error
}

// dialTransport opens a connection of the given transport to url.
func dialTransport(ctx context.Context, url string, tr Transport, cfg *config, log *slog.Logger) (transportConn, error) {
	if tr == TransportWebTransport {
		return dialWebTransport(ctx, url, cfg)
	}
	return dialWebSocket(ctx, url, cfg, log)
}

// wsConn is a signaling WebSocket: one message per text frame.
type wsConn struct {
	ws  *websocket.Conn
	log *slog.Logger
}

func dialWebSocket(ctx context.Context, url string, cfg *config, log *slog.Logger) (*wsConn, error) {
	opts := &websocket.DialOptions{}
	if cfg.dialOptions != nil {
		o := *cfg.dialOptions
		opts = &o
	}
	if opts.HTTPClient == nil && (cfg.tls != nil || len(cfg.certHashes) > 0) {
		// Keep-alives off: a refused upgrade must not leave a pooled
		// connection (and its goroutines) behind.
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:             http.ProxyFromEnvironment,
			TLSClientConfig:   cfg.clientTLS("http/1.1"),
			DisableKeepAlives: true,
		}}
	}
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxMessageSize)
	return &wsConn{ws: ws, log: log}, nil
}

func (c *wsConn) readMessage() ([]byte, error) {
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			return nil, err
		}
		if typ == websocket.MessageText {
			return b, nil
		}
		c.log.Warn("ignoring binary signaling frame", "bytes", len(b))
	}
}

func (c *wsConn) writeMessage(ctx context.Context, msg []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, msg)
}

func (c *wsConn) close() error { return c.ws.CloseNow() }
