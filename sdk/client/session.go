package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

const (
	defaultPingInterval = 10 * time.Second
	defaultResumeGrace  = 15 * time.Second
	// backoff bounds between resume attempts.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
	// maxDialTimeout bounds one resume attempt's dial and request.
	maxDialTimeout = 5 * time.Second
)

// spawnSupervisor starts the goroutine that owns the session after the join:
// it resumes dropped connections and runs cleanup at the end.
func (c *Client) spawnSupervisor(conn *signalConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	go c.supervise(conn)
	return true
}

func (c *Client) supervise(conn *signalConn) {
	defer c.cleanup()
	for {
		select {
		case <-conn.done:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		closed, leaving, noResume := c.closed, c.leaving, c.noResume
		c.mu.Unlock()
		switch {
		case closed:
			return
		case leaving:
			c.shutdown(nil)
			return
		case noResume != nil:
			to, move := c.movedTo(noResume)
			if !move {
				c.shutdown(noResume)
				return
			}
			next, err := c.move(to)
			if err != nil {
				c.log.Warn("could not join the moved room again", "error", err)
				c.shutdown(err)
				return
			}
			conn = next
			continue
		case !c.cfg.reconnect:
			c.shutdown(conn.closeErr())
			return
		}
		c.log.Info("signaling connection lost; resuming", "error", conn.closeErr())
		next, err := c.reconnect()
		if err != nil {
			c.log.Warn("could not resume session", "error", err)
			c.shutdown(err)
			return
		}
		conn = next
	}
}

// reconnect resumes the session on a new connection, retrying with backoff
// until the grace period runs out or the server refuses.
func (c *Client) reconnect() (*signalConn, error) {
	c.mu.Lock()
	c.conn = nil
	c.connReady = make(chan struct{})
	session := c.session
	c.mu.Unlock()
	c.setState(StateReconnecting)

	grace := time.Duration(session.ResumeGraceMS) * time.Millisecond
	if grace <= 0 {
		grace = defaultResumeGrace
	}
	ctx, cancel := context.WithTimeout(c.ctx, grace)
	defer cancel()
	req := protocol.ResumeRequest{SessionID: session.ID, ResumeToken: session.ResumeToken}
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		resp, conn, err := c.resumeOnce(ctx, req)
		if err == nil {
			c.resumed(resp, conn)
			c.log.Info("session resumed", "attempt", attempt)
			return conn, nil
		}
		if c.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, fmt.Errorf("%w: %w", ErrResumeFailed, ErrClosed)
		}
		if isServerError(err) || errors.Is(err, ErrServerClosed) {
			if to, ok := c.movedTo(c.closingErr()); ok || (errors.Is(err, core.ErrSessionExpired) && c.canMove()) {
				return c.move(to) // the node restarted, or the room moved meanwhile
			}
			return nil, fmt.Errorf("%w: %w", ErrResumeFailed, err)
		}
		if attempt >= resumeBeforeMove && c.canMove() {
			return c.move("") // the node is unreachable: try the others
		}
		c.log.Debug("resume attempt failed", "attempt", attempt, "error", err)
		// Full jitter keeps a room's clients from redialing in lockstep.
		delay := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			if c.ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %w", ErrResumeFailed, ErrClosed)
			}
			return nil, fmt.Errorf("%w: grace period over after %d attempts: %w", ErrResumeFailed, attempt, err)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (c *Client) resumeOnce(ctx context.Context, req protocol.ResumeRequest) (*protocol.JoinResponse, *signalConn, error) {
	ctx, cancel := context.WithTimeout(ctx, maxDialTimeout)
	defer cancel()
	return c.handshake(ctx, protocol.TypeResume, req)
}

// resumed installs a resumed connection: new session credentials, pending
// ICE candidates sent, requests released.
func (c *Client) resumed(resp *protocol.JoinResponse, conn *signalConn) {
	c.mu.Lock()
	c.dialing = nil
	c.conn = conn
	c.session = resp.Session
	close(c.connReady)
	pub, sub := c.pub, c.sub
	c.mu.Unlock()
	c.spawn(func() { c.ping(conn) })
	for _, p := range []*peer{pub, sub} {
		if p != nil {
			p.flushLocal()
		}
	}
	c.setState(StateConnected)
	c.emit(func(h *handlers) {
		if h.onReconnect != nil {
			h.onReconnect()
		}
	})
}

// ping keeps conn alive with a ping every ping_interval_ms. A ping left
// unanswered for an interval closes the connection, which resumes it.
func (c *Client) ping(conn *signalConn) {
	c.mu.Lock()
	interval := time.Duration(c.session.PingIntervalMS) * time.Millisecond
	c.mu.Unlock()
	if interval <= 0 {
		interval = defaultPingInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-conn.done:
			return
		case <-c.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, interval)
		_, err := conn.call(ctx, c.nextID(), protocol.TypePing, nil, nil)
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case err == nil:
		case timedOut:
			c.log.Warn("ping unanswered; dropping the connection")
			conn.close(errors.New("ping timeout"))
			return
		default:
			c.log.Debug("ping failed", "error", err)
		}
	}
}
