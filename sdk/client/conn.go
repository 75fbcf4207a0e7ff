package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
)

const (
	// maxMessageSize bounds a message from the server. Offers for rooms with
	// many tracks are the largest; the server's own limit applies to us.
	maxMessageSize = 4 << 20
	// writeTimeout bounds one message write.
	writeTimeout = 10 * time.Second
)

// signalConn is one signaling connection over either transport. Its read
// loop is the only reader: it hands responses to the request waiting for
// them (by id) and events to onEvent, in arrival order, never blocking on
// either.
type signalConn struct {
	tc      transportConn
	log     *slog.Logger
	onEvent func(protocol.Message) // runs on the read loop; must not block

	mu      sync.Mutex
	pending map[string]*pendingCall
	err     error // why the connection ended; set before done closes
	done    chan struct{}
}

// pendingCall is a request waiting for its response.
type pendingCall struct {
	typ string
	// ch receives the response; nil for fire-and-forget requests, whose
	// failures are only logged.
	ch chan protocol.Message
	// hook, if set, runs on the read loop with the response before any later
	// message is read, so state derived from it precedes later events.
	hook func(protocol.Message)
}

// dialSignal opens a signaling connection over tr. The read loop is not
// started.
func dialSignal(ctx context.Context, url string, tr Transport, cfg *config, log *slog.Logger) (*signalConn, error) {
	tc, err := dialTransport(ctx, url, tr, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("dial %s over %s: %w", url, tr, err)
	}
	return &signalConn{
		tc:      tc,
		log:     log,
		pending: make(map[string]*pendingCall),
		done:    make(chan struct{}),
	}, nil
}

// readLoop reads until the connection fails or is closed.
func (s *signalConn) readLoop() {
	for {
		b, err := s.tc.readMessage()
		if err != nil {
			s.finish(err)
			return
		}
		msg, err := protocol.DecodeLenient(b)
		if err != nil {
			s.log.Warn("undecodable signaling message", "error", err, "id", msg.ID, "type", msg.Type)
			if msg.ID == "" {
				continue
			}
			// Fail the request it answers rather than leave it waiting.
			failed := false
			msg.OK = &failed
			msg.Error = &protocol.ErrorBody{Code: core.CodeOf(err), Message: err.Error()}
		}
		if msg.IsResponse() {
			s.deliver(msg)
			continue
		}
		s.onEvent(msg)
	}
}

// deliver hands a response to the request waiting for it.
func (s *signalConn) deliver(msg protocol.Message) {
	s.mu.Lock()
	pc := s.pending[msg.ID]
	delete(s.pending, msg.ID)
	s.mu.Unlock()
	if pc == nil {
		s.log.Debug("response to no pending request", "id", msg.ID, "type", msg.Type, "error", msg.Err())
		return
	}
	if pc.hook != nil {
		pc.hook(msg)
	}
	if pc.ch != nil {
		pc.ch <- msg // buffered, delivered once
		return
	}
	if err := msg.Err(); err != nil {
		s.log.Warn("request failed", "type", pc.typ, "error", err)
	}
}

// finish records why the connection ended, fails the pending requests and
// marks the connection done.
func (s *signalConn) finish(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	s.pending = make(map[string]*pendingCall)
	s.mu.Unlock()
	_ = s.tc.close()
	close(s.done)
}

// closeErr returns why the connection ended.
func (s *signalConn) closeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return ErrDisconnected
	}
	return s.err
}

// close shuts the connection; the read loop then finishes. cause, if not nil,
// becomes the connection's error.
func (s *signalConn) close(cause error) {
	if cause != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = fmt.Errorf("%w: %w", ErrDisconnected, cause)
		}
		s.mu.Unlock()
	}
	_ = s.tc.close()
}

func (s *signalConn) register(id string, pc *pendingCall) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		if s.err != nil {
			return s.err
		}
		return ErrDisconnected
	default:
	}
	s.pending[id] = pc
	return nil
}

func (s *signalConn) unregister(id string) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// write sends one message. The caller's context is deliberately not used: a
// write interrupted by cancellation closes the connection, and one caller
// giving up must not cost the session its connection.
func (s *signalConn) write(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := s.tc.writeMessage(ctx, b); err != nil {
		select {
		case <-s.done:
			return s.closeErr()
		default:
		}
		return fmt.Errorf("%w: write: %w", ErrDisconnected, err)
	}
	return nil
}

// call sends a request and waits for its response. A failed response is
// returned as an error wrapping the *core.Error; the message is returned too.
func (s *signalConn) call(ctx context.Context, id, typ string, data any, hook func(protocol.Message)) (protocol.Message, error) {
	b, err := protocol.Request(id, typ, data)
	if err != nil {
		return protocol.Message{}, err
	}
	pc := &pendingCall{typ: typ, ch: make(chan protocol.Message, 1), hook: hook}
	if err := s.register(id, pc); err != nil {
		return protocol.Message{}, err
	}
	defer s.unregister(id)
	if err := s.write(b); err != nil {
		return protocol.Message{}, err
	}
	select {
	case msg := <-pc.ch:
		return msg, msg.Err()
	case <-s.done:
		select {
		case msg := <-pc.ch: // answered just before the connection ended
			return msg, msg.Err()
		default:
			return protocol.Message{}, s.closeErr()
		}
	case <-ctx.Done():
		return protocol.Message{}, ctx.Err()
	}
}

// notify sends a request without waiting; a failed response is logged.
func (s *signalConn) notify(id, typ string, data any) error {
	b, err := protocol.Request(id, typ, data)
	if err != nil {
		return err
	}
	if err := s.register(id, &pendingCall{typ: typ}); err != nil {
		return err
	}
	if err := s.write(b); err != nil {
		s.unregister(id)
		return err
	}
	return nil
}

// isServerError reports whether err is a refusal by the server, as opposed
// to a transport or local failure.
func isServerError(err error) bool {
	var ce *core.Error
	return errors.As(err, &ce)
}
