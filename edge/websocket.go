package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/core"
)

// wsConn adapts a WebSocket to signal.Conn: one message per frame.
type wsConn struct {
	ws    *websocket.Conn
	limit int64
}

// Read returns the next message, or core.ErrMessageTooLarge for a frame
// longer than the limit.
func (c *wsConn) Read(ctx context.Context) ([]byte, error) {
	_, r, err := c.ws.Reader(ctx)
	if err != nil {
		return nil, fmt.Errorf("websocket read: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(r, c.limit+1))
	if err != nil {
		return nil, fmt.Errorf("websocket read: %w", err)
	}
	if int64(len(b)) > c.limit {
		return nil, core.ErrMessageTooLarge
	}
	return b, nil
}

// Write sends one text frame.
func (c *wsConn) Write(ctx context.Context, msg []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, msg)
}

// Close closes the WebSocket with a normal close frame naming reason.
func (c *wsConn) Close(reason string) error {
	if len(reason) > 120 {
		reason = reason[:120]
	}
	if err := c.ws.Close(websocket.StatusNormalClosure, reason); err != nil {
		_ = c.ws.CloseNow()
	}
	return nil
}

// handleSignal upgrades /v1/signal to a WebSocket and runs its session.
func (s *Server) handleSignal(w http.ResponseWriter, r *http.Request) {
	opts := &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins, InsecureSkipVerify: s.cfg.Dev}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		s.log.Debug("websocket accept failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	ws.SetReadLimit(-1) // wsConn.Read enforces the limit so it can answer with an error first
	s.sig.Serve(s.ctx, &wsConn{ws: ws, limit: s.sig.Config().MaxMessageSize})
}
