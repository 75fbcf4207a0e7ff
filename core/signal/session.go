package signal

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/core/room"
)

// session is a participant's signaling state. It outlives its connection
// for the resume grace period, and it is the participant's room.Sink.
type session struct {
	id          string
	resumeToken string
	srv         *Server

	mu      sync.Mutex
	p       *room.Participant
	conn    *connection // nil while joining, resuming or detached
	pending []queued    // events held while conn is nil
	dropped bool        // pending overflowed
	grace   *time.Timer
	ended   bool
}

type queued struct {
	typ string
	msg []byte
}

func newSession(srv *Server) *session {
	return &session{id: core.NewID(core.PrefixSession), resumeToken: core.NewSecret(20), srv: srv}
}

// Send implements room.Sink: it queues an event for the client, or holds it
// while the session has no connection.
func (ss *session) Send(typ string, data any) {
	msg, err := protocol.Event(typ, data)
	if err != nil {
		ss.srv.log.Error("encode event", "type", typ, "err", err)
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return
	}
	if ss.conn != nil {
		ss.conn.enqueue(msg)
		return
	}
	if len(ss.pending) >= ss.srv.cfg.WriteQueue {
		ss.dropped = true
		return
	}
	ss.pending = append(ss.pending, queued{typ, msg})
}

// attach makes c the session's connection and flushes held events. Stale
// negotiation events are dropped when the session resumes: the server sends
// a fresh offer instead.
func (ss *session) attach(c *connection, resumed bool) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return false
	}
	if ss.grace != nil {
		ss.grace.Stop()
		ss.grace = nil
	}
	for _, q := range ss.pending {
		if resumed && (q.typ == protocol.TypeSubOffer || q.typ == protocol.TypeTrickle) {
			continue
		}
		c.enqueue(q.msg)
	}
	if ss.dropped {
		c.log.Warn("events dropped while the session was detached")
	}
	ss.pending, ss.dropped = nil, false
	ss.conn = c
	return true
}

// detach releases c; the participant stays for the grace period.
func (ss *session) detach(c *connection) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn != c || ss.ended {
		return
	}
	ss.conn = nil
	grace := ss.srv.cfg.ResumeGrace
	ss.grace = time.AfterFunc(grace, func() { ss.end(room.ReasonDisconnected) })
}

// hold detaches the session from its current connection, if any, while a
// resume is in progress, and returns the connection it had.
func (ss *session) hold() *connection {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.grace != nil {
		ss.grace.Stop()
		ss.grace = nil
	}
	old := ss.conn
	ss.conn = nil
	return old
}

// end removes the participant and forgets the session. Calling it again
// does nothing.
func (ss *session) end(reason string) {
	if p, _, ok := ss.finish(); ok && p != nil {
		p.Leave(reason)
	}
}

// finish marks the session ended and forgets it, returning its participant
// and connection; ok is false when it had already ended.
func (ss *session) finish() (p *room.Participant, c *connection, ok bool) {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return nil, nil, false
	}
	ss.ended = true
	if ss.grace != nil {
		ss.grace.Stop()
	}
	p, c = ss.p, ss.conn
	ss.conn, ss.pending = nil, nil
	ss.mu.Unlock()
	ss.srv.removeSession(ss)
	return p, c, true
}

func (ss *session) participant() *room.Participant {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.p
}

func (ss *session) info() protocol.SessionInfo {
	return protocol.SessionInfo{
		ID: ss.id, ResumeToken: ss.resumeToken,
		ResumeGraceMS:  ss.srv.cfg.ResumeGrace.Milliseconds(),
		PingIntervalMS: ss.srv.cfg.PingInterval.Milliseconds(),
	}
}

// Removed implements room.Sink: the participant left the room, so the
// session ends and its connection, if any, is told why and closed. A
// participant moved to another node is told to join again there (code
// redirect).
func (ss *session) Removed(reason string) {
	p, c, ok := ss.finish()
	if !ok || c == nil || reason == room.ReasonLeave {
		return
	}
	if reason == room.ReasonMoved && p != nil {
		c.closeWith(&core.Error{Code: core.CodeRedirect, Message: "the room moved to another node: join again", URL: p.MovedTo()}, reason)
		return
	}
	ev := protocol.Closing{Reason: reason, Code: core.CodeSessionExpired}
	if p != nil {
		ev.Detail = p.RemovalDetail()
	}
	c.closeWithEvent(ev, reason)
}
