package signal

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"sync"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/room"
)

// Deps are what a Server works with. Auth and Rooms are required; a nil Log
// discards logs.
type Deps struct {
	Auth  core.Authenticator
	Rooms *room.Manager
	Log   *slog.Logger
}

// Server runs signaling sessions. Transports call Serve for each accepted
// connection. All methods are safe for concurrent use.
type Server struct {
	cfg      Config
	auth     core.Authenticator
	rooms    *room.Manager
	log      *slog.Logger
	handlers map[string]handler

	mu       sync.Mutex
	sessions map[string]*session // by session id
	conns    map[*connection]struct{}
	closing  bool
	serving  sync.WaitGroup
}

// New returns a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Auth == nil || deps.Rooms == nil {
		return nil, errors.New("signal: deps.Auth and deps.Rooms are required")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, auth: deps.Auth, rooms: deps.Rooms, log: deps.Log,
		sessions: make(map[string]*session), conns: make(map[*connection]struct{}),
	}
	s.handlers = s.routes()
	return s, nil
}

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

// Serve runs one connection until it closes or ctx ends. The calling
// goroutine owns the connection's read loop; Serve starts one writer
// goroutine and waits for it before returning.
func (s *Server) Serve(ctx context.Context, conn Conn) {
	c := newConnection(s, conn)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.rejectUnavailable()
		return
	}
	s.conns[c] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.serving.Done()
	}()
	c.run(ctx)
}

// Sessions returns the number of live sessions, attached or awaiting resume.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Stats counts sessions and connections.
type Stats struct {
	Sessions    int // joined sessions, attached or awaiting resume
	Detached    int // sessions whose connection dropped, within the grace period
	Connections int // open transport connections, joined or not
}

// Stats returns current counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	st := Stats{Sessions: len(s.sessions), Connections: len(s.conns)}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.mu.Lock()
		if ss.conn == nil && !ss.ended {
			st.Detached++
		}
		ss.mu.Unlock()
	}
	return st
}

func (s *Server) addSession(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[ss.id] = ss
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
}

// lookup finds a session by id and resume token, in constant time on the
// token.
func (s *Server) lookup(id, token string) *session {
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil || subtle.ConstantTimeCompare([]byte(ss.resumeToken), []byte(token)) != 1 {
		return nil
	}
	return ss
}

// Shutdown tells every client the server is going away, removes every
// participant, and waits for connections to close or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*connection, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(core.ErrUnavailable, "server shutting down")
	}
	for _, ss := range sessions {
		ss.end(room.ReasonShutdown)
	}
	done := make(chan struct{})
	go func() { s.serving.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.close("shutdown deadline")
		}
		return ctx.Err()
	}
}
