package signal

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

// connection is one transport connection. The goroutine in run owns the read
// loop and the session pointer; a writer goroutine owns Conn.Write.
type connection struct {
	srv     *Server
	conn    Conn
	log     *slog.Logger
	out     chan []byte // nil message: close after writing what came before
	done    chan struct{}
	once    sync.Once
	limiter *rate.Limiter

	// owned by the read loop
	sess       *session
	violations int
}

func newConnection(s *Server, c Conn) *connection {
	return &connection{
		srv: s, conn: c, log: s.log,
		out:     make(chan []byte, s.cfg.WriteQueue),
		done:    make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst),
	}
}

// run reads and dispatches messages until the connection ends.
func (c *connection) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var writer sync.WaitGroup
	writer.Go(func() { c.write(ctx) })
	idle := time.AfterFunc(c.srv.cfg.AuthTimeout, c.idleTimeout)
	defer idle.Stop()
	for {
		msg, err := c.conn.Read(ctx)
		if err != nil {
			c.readFailed(err)
			break
		}
		if !c.handle(ctx, msg) {
			break
		}
		idle.Reset(c.idleLimit())
	}
	if c.sess != nil {
		c.sess.detach(c)
	}
	// Let the writer flush what is queued (an error, a closing event), but
	// not for longer than one write may take.
	select {
	case c.out <- nil:
	default:
		c.close("connection ended")
	}
	stop := time.AfterFunc(c.srv.cfg.WriteTimeout, func() { c.close("flush timeout") })
	writer.Wait()
	stop.Stop()
	c.close("connection ended")
}

// idleLimit is how long the connection may stay silent: the auth timeout
// before joining, three ping intervals after. Called from the read loop.
func (c *connection) idleLimit() time.Duration {
	if c.sess != nil {
		return 3 * c.srv.cfg.PingInterval
	}
	return c.srv.cfg.AuthTimeout
}

// idleTimeout closes a silent connection, telling the client why first.
func (c *connection) idleTimeout() {
	c.closeWith(core.Errorf(core.CodeTimeout, "connection idle for too long: ping every ping_interval_ms"), "idle")
}

func (c *connection) readFailed(err error) {
	switch {
	case errors.Is(err, core.ErrMessageTooLarge):
		c.closeWith(core.Errorf(core.CodeMessageTooLarge, "message exceeds %d bytes", c.srv.cfg.MaxMessageSize), "message too large")
	default:
		c.log.Debug("signal connection closed", "err", err)
	}
}

// handle decodes and dispatches one message; false ends the loop.
func (c *connection) handle(ctx context.Context, raw []byte) bool {
	m, err := protocol.Decode(raw)
	if err != nil {
		c.enqueue(protocol.ErrorResponse(m.ID, m.Type, err))
		return true
	}
	if !c.limiter.Allow() {
		c.violations++
		c.enqueue(protocol.ErrorResponse(m.ID, m.Type, core.ErrRateLimited))
		if c.violations >= c.srv.cfg.MaxRateViolations {
			c.closeWith(core.Errorf(core.CodeRateLimited, "too many requests over the limit"), "rate limited")
			return false
		}
		return true
	}
	c.violations = 0
	h, ok := c.srv.handlers[m.Type]
	if !ok {
		c.enqueue(protocol.ErrorResponse(m.ID, m.Type, core.Errorf(core.CodeUnknownType, "unknown message type %q", m.Type)))
		return true
	}
	if c.sess == nil && !h.public {
		c.enqueue(protocol.ErrorResponse(m.ID, m.Type, core.Errorf(core.CodeUnauthenticated, "%s: join or resume first", m.Type)))
		return true
	}
	return h.fn(ctx, c, &m)
}

// reply sends the response to m: data on success, the error otherwise.
func (c *connection) reply(m *protocol.Message, data any, err error) {
	if err == nil {
		if data == nil {
			data = struct{}{}
		}
		b, encErr := protocol.Response(m.ID, m.Type, data)
		if encErr == nil {
			c.enqueue(b)
			return
		}
		err = encErr
	}
	if core.CodeOf(err) == core.CodeInternal {
		c.log.Error("request failed", "type", m.Type, "err", err)
		err = core.Errorf(core.CodeInternal, "internal error")
	}
	c.enqueue(protocol.ErrorResponse(m.ID, m.Type, err))
}

// enqueue queues msg for the writer without blocking. A client too slow to
// drain its queue is disconnected.
func (c *connection) enqueue(msg []byte) {
	select {
	case <-c.done:
	case c.out <- msg:
	default:
		c.log.Warn("signal client too slow; disconnecting")
		c.close("slow consumer")
	}
}

// closeWith sends a closing event carrying err's code and closes the
// connection once everything queued before it has been written.
func (c *connection) closeWith(err error, reason string) {
	ev := protocol.Closing{Reason: err.Error(), Code: core.CodeOf(err)}
	var ce *core.Error
	if errors.As(err, &ce) {
		ev = protocol.Closing{Reason: ce.Message, Code: ce.Code, URL: ce.URL}
	}
	c.closeWithEvent(ev, reason)
}

// closeWithEvent sends the closing event ev and closes the connection once
// everything queued before it has been written.
func (c *connection) closeWithEvent(closing protocol.Closing, reason string) {
	ev, _ := protocol.Event(protocol.TypeClosing, closing)
	c.enqueue(ev)
	select {
	case <-c.done:
	case c.out <- nil:
	default:
		c.close(reason)
	}
}

// rejectUnavailable answers a connection accepted during shutdown.
func (c *connection) rejectUnavailable() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ev, _ := protocol.Event(protocol.TypeClosing, protocol.Closing{Reason: "server shutting down", Code: core.CodeUnavailable})
	_ = c.conn.Write(ctx, ev)
	_ = c.conn.Close("server shutting down")
}

// close closes the transport; safe to call from any goroutine, repeatedly.
func (c *connection) close(reason string) {
	c.once.Do(func() {
		close(c.done)
		_ = c.conn.Close(reason)
	})
}

// write drains the outbound queue until the connection closes.
func (c *connection) write(ctx context.Context) {
	for {
		select {
		case <-c.done:
			return
		case msg := <-c.out:
			if msg == nil {
				c.close("closed by server")
				return
			}
			wctx, cancel := context.WithTimeout(ctx, c.srv.cfg.WriteTimeout)
			err := c.conn.Write(wctx, msg)
			cancel()
			if err != nil {
				c.log.Debug("signal write failed", "err", err)
				c.close("write failed")
				return
			}
		}
	}
}
