package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/pion/webrtc/v4"
)

// Clusters. A Parley cluster hosts each room on one node. A join that
// reaches another node is answered with the error code redirect and the
// owner's signaling URL; the client dials that URL and joins again, up to
// maxRedirects times (joinFollowing). A room can also leave the node a
// client is on while it is there: the node drains, or the cluster declares
// it failed, and its clients get a closing event with code redirect (and
// where to go), or the node is simply gone. The client then moves: it
// joins the room again, as a new participant, at the URL it was given, at
// the node it was on, at the other nodes the join response named
// (alternate_urls), or where it first connected, following redirects and
// retrying for up to moveTimeout, and publishes its local tracks again on a
// new publisher connection. Remote tracks arrive again through OnTrack;
// the room's changes are reported through the participant and track
// callbacks, and OnReconnect follows.

const (
	// maxRedirects bounds how many redirects one join follows.
	maxRedirects = 4
	// moveTimeout bounds how long a client tries to join its room again
	// after the room left its node. It outlasts a cluster's default
	// failure grace (10 s), after which a dead node's rooms are free.
	moveTimeout = 45 * time.Second
	// resumeBeforeMove is how many resume attempts fail to connect at all
	// before a client that knows other nodes moves instead.
	resumeBeforeMove = 3
)

// moveState is what the client knows for redirects and moves; guarded by
// Client.mu.
type moveState struct {
	origin     string   // the URL the client was created with
	alternates []string // the other nodes, from the last join response
}

// target returns the signaling URL and transport to dial now.
func (c *Client) target() (string, Transport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moves.origin == "" {
		c.moves.origin = c.url
	}
	return c.url, c.transport
}

// setTarget makes rawURL the signaling URL to dial. The transport follows
// its scheme unless the one chosen with WithTransport can carry it.
func (c *Client) setTarget(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("redirect url: %w", err)
	}
	tr, err := resolveTransport(c.cfg.transport, u.Scheme)
	if err != nil {
		if tr, err = resolveTransport(TransportAuto, u.Scheme); err != nil {
			return fmt.Errorf("redirect url %q: %w", rawURL, err)
		}
	}
	c.mu.Lock()
	if c.moves.origin == "" {
		c.moves.origin = c.url
	}
	c.url, c.transport = rawURL, tr
	c.mu.Unlock()
	return nil
}

// joinFollowing joins at the current URL, following redirects.
func (c *Client) joinFollowing(ctx context.Context) (*protocol.JoinResponse, *signalConn, error) {
	for hop := 0; ; hop++ {
		resp, conn, err := c.join(ctx)
		to := core.RedirectURL(err)
		if to == "" || hop == maxRedirects {
			if err == nil {
				c.mu.Lock()
				c.moves.alternates = resp.AlternateURLs
				c.mu.Unlock()
			}
			return resp, conn, err
		}
		c.log.Info("room is hosted elsewhere; following the redirect", "to", to)
		if err := c.setTarget(to); err != nil {
			return nil, nil, err
		}
	}
}

// movedTo tells whether a closing event's error asks the client to move,
// and where ("" for anywhere).
func (c *Client) movedTo(closing error) (string, bool) {
	var ce *core.Error
	if !c.cfg.reconnect || !errors.As(closing, &ce) {
		return "", false
	}
	switch ce.Code {
	case core.CodeRedirect:
		return ce.URL, true
	case core.CodeUnavailable: // a node of a cluster going away
		c.mu.Lock()
		defer c.mu.Unlock()
		return "", len(c.moves.alternates) > 0
	}
	return "", false
}

// canMove reports whether the client knows other nodes to move to.
func (c *Client) canMove() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.moves.alternates) > 0
}

// move joins the room again elsewhere (see the comment at the top) and
// returns the new connection.
func (c *Client) move(to string) (*signalConn, error) {
	c.mu.Lock()
	if c.conn != nil { // else reconnect has already made requests wait
		c.conn = nil
		c.connReady = make(chan struct{})
	}
	c.noResume = nil
	pub, sub := c.pub, c.sub
	c.pub, c.sub, c.pubErr = nil, nil, nil
	targets := moveTargets(to, c.url, c.moves.alternates, c.moves.origin)
	c.mu.Unlock()
	c.setState(StateReconnecting)
	c.signals.drop() // offers and candidates of the old node
	for _, p := range []*peer{pub, sub} {
		if p != nil {
			p.close()
		}
	}
	c.log.Info("room moved; joining it again", "targets", targets)
	ctx, cancel := context.WithTimeout(c.ctx, moveTimeout)
	defer cancel()
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		if err := c.setTarget(targets[attempt%len(targets)]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrResumeFailed, err)
		}
		c.mu.Lock()
		old := c.room.clone()
		c.mu.Unlock()
		actx, acancel := context.WithTimeout(ctx, 2*maxDialTimeout)
		resp, conn, err := c.joinFollowing(actx)
		acancel()
		if err == nil {
			c.moved(resp, conn, &old)
			return conn, nil
		}
		if c.ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, fmt.Errorf("%w: %w", ErrResumeFailed, ErrClosed)
		}
		if !retryableMove(err) {
			return nil, fmt.Errorf("%w: joining the room again: %w", ErrResumeFailed, err)
		}
		c.log.Debug("joining the moved room failed", "attempt", attempt+1, "error", err)
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: room not joined again within %s: %w", ErrResumeFailed, moveTimeout, err)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// moveTargets lists where to try joining again, without repeats: the URL
// the server named, the node the client was on, the other nodes, and the
// URL the client was created with.
func moveTargets(to, current string, alternates []string, origin string) []string {
	var out []string
	for _, u := range slices.Concat([]string{to, current}, alternates, []string{origin}) {
		if u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// retryableMove reports whether a failed join may succeed on a retry or at
// another node: anything but a refusal of the participant itself.
func retryableMove(err error) bool {
	var ce *core.Error
	if !errors.As(err, &ce) {
		return true // could not connect
	}
	switch ce.Code {
	case core.CodeUnavailable, core.CodeRedirect, core.CodeTimeout, core.CodeInternal, core.CodeSessionExpired:
		return true
	}
	return false
}

// moved installs the session joined by move: the new connection and
// session, the room's changes reported, the local tracks published again.
func (c *Client) moved(resp *protocol.JoinResponse, conn *signalConn, old *roomState) {
	c.mu.Lock()
	c.dialing = nil
	c.conn = conn
	c.noResume = nil // a closing seen by a failed attempt concerns that attempt
	c.session = resp.Session
	c.iceServers = c.iceServersFrom(resp.ICEServers)
	close(c.connReady)
	cur := c.room.clone()
	locals := make([]*LocalTrack, 0, len(c.local))
	for _, lt := range c.local {
		locals = append(locals, lt)
	}
	c.mu.Unlock()
	c.spawn(func() { c.ping(conn) })
	c.emitRoomDiff(old, &cur)
	if len(locals) > 0 {
		if err := c.republish(locals); err != nil {
			c.log.Warn("publishing again after the move failed", "error", err)
			c.mu.Lock()
			c.pubErr = fmt.Errorf("%w: %w", ErrPublisherFailed, err)
			c.mu.Unlock()
		}
	}
	u, _ := c.target()
	c.log.Info("room joined again after a move", "url", u)
	c.setState(StateConnected)
	c.emit(func(h *handlers) {
		if h.onReconnect != nil {
			h.onReconnect()
		}
	})
}

// republish publishes the local tracks on a new publisher connection.
func (c *Client) republish(locals []*LocalTrack) error {
	ctx, cancel := context.WithTimeout(c.ctx, settleTimeout)
	defer cancel()
	if err := c.acquirePub(ctx); err != nil {
		return err
	}
	defer c.releasePub()
	p, err := c.pubPeer()
	if err != nil {
		return err
	}
	for _, lt := range locals {
		lt.forgetPublished()
		tr, err := p.pc.AddTransceiverFromTrack(lt.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fmt.Errorf("add transceiver: %w", err)
		}
		lt.sender = tr.Sender()
		c.spawn(lt.readRTCP)
	}
	return c.negotiatePub(ctx, p)
}

// forgetPublished drops the server's report of the track (its Parley id
// changes when it is published again on another node). Published stays
// closed; Info reports the new id once the new node reports the track.
func (t *LocalTrack) forgetPublished() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.info = core.TrackInfo{}
}

// drop discards every queued item.
func (q *queue[T]) drop() {
	q.mu.Lock()
	clear(q.items)
	q.items = q.items[:0]
	q.mu.Unlock()
}
