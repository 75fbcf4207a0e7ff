package signal

import (
	"context"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/core/room"
)

// handler serves one request type. public handlers run before the client
// joined. fn returns false to end the connection after its reply.
type handler struct {
	public bool
	fn     func(ctx context.Context, c *connection, m *protocol.Message) bool
}

// authTimeout bounds one token verification.
const authTimeout = 5 * time.Second

func (s *Server) routes() map[string]handler {
	return map[string]handler{
		protocol.TypeJoin:        {public: true, fn: handleJoin},
		protocol.TypeResume:      {public: true, fn: handleResume},
		protocol.TypeLeave:       {fn: handleLeave},
		protocol.TypePing:        call(true, handlePing),
		protocol.TypePublish:     call(false, handlePublish),
		protocol.TypeUnpublish:   call(false, handleUnpublish),
		protocol.TypeSubAnswer:   call(false, handleSubAnswer),
		protocol.TypeTrickle:     call(false, handleTrickle),
		protocol.TypeSubscribe:   call(false, handleSubscribe),
		protocol.TypeUnsubscribe: call(false, handleUnsubscribe),
		protocol.TypeData:        call(false, handleData),
	}
}

// call adapts a typed request function into a handler: decode the data,
// run fn, reply with its result.
func call[T any](public bool, fn func(context.Context, *connection, *T) (any, error)) handler {
	return handler{public: public, fn: func(ctx context.Context, c *connection, m *protocol.Message) bool {
		var req T
		if err := protocol.DecodeData(m, &req); err != nil {
			c.reply(m, nil, err)
			return true
		}
		data, err := fn(ctx, c, &req)
		c.reply(m, data, err)
		return true
	}}
}

// decodeEntry decodes the data of a join or resume into req, answering
// the request itself (and returning false) when it is invalid or the
// connection already has a session.
func decodeEntry(c *connection, m *protocol.Message, req any) bool {
	if err := protocol.DecodeData(m, req); err != nil {
		c.reply(m, nil, err)
		return false
	}
	if c.sess != nil {
		c.reply(m, nil, core.Errorf(core.CodeConflict, "already joined on this connection"))
		return false
	}
	return true
}

func handleJoin(ctx context.Context, c *connection, m *protocol.Message) bool {
	var req protocol.JoinRequest
	if !decodeEntry(c, m, &req) {
		return true
	}
	if req.Token == "" {
		c.reply(m, nil, core.Errorf(core.CodeInvalidToken, "join needs a token"))
		return true
	}
	actx, cancel := context.WithTimeout(ctx, authTimeout)
	claims, err := c.srv.auth.Authenticate(actx, req.Token)
	cancel()
	if err != nil {
		c.reply(m, nil, err)
		return true
	}
	ss := newSession(c.srv)
	auto := req.AutoSubscribe == nil || *req.AutoSubscribe
	p, err := c.srv.rooms.Join(ctx, claims, room.JoinOptions{AutoSubscribe: auto, Metadata: req.Metadata}, ss)
	if err != nil {
		c.reply(m, nil, err)
		return true
	}
	ss.mu.Lock()
	ss.p = p
	ss.mu.Unlock()
	c.srv.addSession(ss)
	c.sess = ss
	c.log = c.log.With("session", ss.id, "participant", p.ID())
	c.reply(m, joinResponse(c.srv, ss, p), nil)
	ss.attach(c, false)
	return true
}

func handleResume(ctx context.Context, c *connection, m *protocol.Message) bool {
	var req protocol.ResumeRequest
	if !decodeEntry(c, m, &req) {
		return true
	}
	ss := c.srv.lookup(req.SessionID, req.ResumeToken)
	if ss == nil {
		c.reply(m, nil, core.Errorf(core.CodeSessionExpired, "no session %q to resume", req.SessionID))
		return true
	}
	if old := ss.hold(); old != nil {
		old.closeWith(core.Errorf(core.CodeConflict, "session resumed on another connection"), "resumed elsewhere")
	}
	p := ss.participant()
	if p == nil || p.Left() {
		ss.end(room.ReasonDisconnected)
		c.reply(m, nil, core.Errorf(core.CodeSessionExpired, "session %q has ended", req.SessionID))
		return true
	}
	c.sess = ss
	c.log = c.log.With("session", ss.id, "participant", p.ID())
	c.reply(m, joinResponse(c.srv, ss, p), nil)
	if ss.attach(c, true) {
		p.Renegotiate()
	}
	c.log.Info("session resumed")
	return true
}

func joinResponse(s *Server, ss *session, p *room.Participant) protocol.JoinResponse {
	return protocol.JoinResponse{
		Participant: p.Info(), Room: p.Snapshot(), Session: ss.info(), ICEServers: s.cfg.ICEServers,
		AlternateURLs: s.rooms.AlternateURLs(),
	}
}

func handleLeave(_ context.Context, c *connection, m *protocol.Message) bool {
	c.reply(m, nil, nil)
	c.sess.end(room.ReasonLeave)
	c.sess = nil
	return false
}

func handlePing(context.Context, *connection, *struct{}) (any, error) {
	return protocol.PingResponse{ServerTimeMS: time.Now().UnixMilli()}, nil
}

func handlePublish(ctx context.Context, c *connection, req *protocol.PublishRequest) (any, error) {
	ans, err := c.sess.participant().Publish(ctx, req.Offer)
	if err != nil {
		return nil, err
	}
	return protocol.PublishResponse{Answer: ans}, nil
}

func handleUnpublish(_ context.Context, c *connection, req *protocol.UnpublishRequest) (any, error) {
	return nil, c.sess.participant().Unpublish(req.TrackID)
}

func handleSubAnswer(_ context.Context, c *connection, req *protocol.SubAnswerRequest) (any, error) {
	return nil, c.sess.participant().SubAnswer(req.Answer)
}

func handleTrickle(_ context.Context, c *connection, req *protocol.Trickle) (any, error) {
	return nil, c.sess.participant().Trickle(req.Target, req.Candidate)
}

func handleSubscribe(ctx context.Context, c *connection, req *protocol.SubscribeRequest) (any, error) {
	return nil, c.sess.participant().Subscribe(ctx, req.TrackIDs)
}

func handleUnsubscribe(_ context.Context, c *connection, req *protocol.SubscribeRequest) (any, error) {
	return nil, c.sess.participant().Unsubscribe(req.TrackIDs)
}

func handleData(_ context.Context, c *connection, req *protocol.DataRequest) (any, error) {
	return nil, c.sess.participant().SendData(req.To, req.Payload)
}
