package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
)

// Deps are the node's parts the API drives. A nil part answers its
// endpoints with 503 (code unavailable).
type Deps struct {
	Rooms        Rooms
	Participants Participants
	Plugins      Plugins
	Webhooks     Webhooks
	Keys         Keys
	SigningKeys  SigningKeys
	// Idempotency keeps replayable responses; nil keeps them in this
	// node's memory (a single node).
	Idempotency Idempotency
	// Cluster, when set, sends a room's requests to the node that owns it,
	// signed with ForwardKey (at least 32 bytes, the same on every node
	// and secret: derived from the cluster secret).
	Cluster    Cluster
	ForwardKey []byte
	// NodeID names this node in idempotency records and forwarded requests.
	NodeID string
	// AdminToken, when set, is accepted as "Authorization: Bearer <token>"
	// and is the only credential for key management.
	AdminToken string
	// Client sends forwarded requests; nil means a client with the
	// configured request timeout.
	Client *http.Client
	Log    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves the API. Create it with New and mount it with Register.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	nonces *nonceCache
	idem   Idempotency
	routes []route
}

// New checks cfg and returns a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Cluster != nil && len(deps.ForwardKey) < 32 {
		return nil, errors.New("api: a cluster needs a forward key of at least 32 bytes")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Client == nil {
		deps.Client = &http.Client{Timeout: cfg.RequestTimeout}
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log, nonces: newNonceCache(cfg.MaxNonces), idem: deps.Idempotency}
	if s.idem == nil {
		s.idem = NewMemoryIdempotency(100000, s.now)
	}
	s.routes = s.table()
	return s, nil
}

func (s *Server) now() time.Time {
	if s.deps.Now != nil {
		return s.deps.Now()
	}
	return time.Now()
}

// route is one endpoint.
type route struct {
	pattern string // ServeMux pattern, "METHOD /path"
	admin   bool   // needs the admin token
	limit   int64  // body cap; 0 means Config.MaxBodyBytes
	h       func(*call)
}

// call is one authenticated request.
type call struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	p     principal
	body  []byte
	start time.Time // when the request arrived
}

// Register mounts every endpoint on mux.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.routes {
		mux.Handle(rt.pattern, s.handler(rt))
	}
}

// Routes lists the ServeMux patterns Register mounts.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.pattern
	}
	return out
}

// handler authenticates, reads the body within its limits, applies the
// Idempotency-Key and runs rt.
func (s *Server) handler(rt route) http.Handler {
	limit := rt.limit
	if limit == 0 {
		limit = s.cfg.MaxBodyBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Signatures cover the body, so signed requests are read first;
		// anything else is checked before its body is read.
		signed := r.Header.Get(ForwardHeader) != "" ||
			strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Authorization"))), strings.ToLower(HMACScheme))
		var p principal
		var err error
		if !signed {
			if p, err = s.authenticate(r, nil); err != nil {
				w.Header().Set("Connection", "close")
				writeError(w, err)
				return
			}
		}
		body, err := s.readBody(w, r, limit)
		if err != nil {
			fail(w, err)
			return
		}
		if signed {
			if p, err = s.authenticate(r, body); err != nil {
				writeError(w, err)
				return
			}
		}
		if rt.admin && !p.admin() {
			writeError(w, ErrAdminOnly)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		c := &call{s: s, w: w, r: r, p: p, body: body, start: start}
		if key := r.Header.Get(IdempotencyHeader); key != "" && !p.forwarded && r.Method != http.MethodGet {
			s.idempotent(c, key, rt.h)
			return
		}
		rt.h(c)
	})
}

// readBody reads r's body up to limit bytes. No progress for IdleTimeout,
// or a body still arriving after RequestTimeout, is a timeout (408).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rc := http.NewResponseController(w)
	start := time.Now()
	in := http.MaxBytesReader(w, r.Body, limit)
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for {
		dl := time.Now().Add(s.cfg.IdleTimeout)
		if end := start.Add(s.cfg.RequestTimeout); end.Before(dl) {
			dl = end
		}
		_ = rc.SetReadDeadline(dl)
		n, err := in.Read(chunk)
		buf.Write(chunk[:n])
		if errors.Is(err, io.EOF) {
			_ = rc.SetReadDeadline(time.Time{})
			return buf.Bytes(), nil
		}
		if err != nil {
			// The rest of the body is not worth waiting for: close the
			// connection after the answer instead of draining it.
			w.Header().Set("Connection", "close")
			var tooBig *http.MaxBytesError
			var ne net.Error
			switch {
			case errors.As(err, &tooBig):
				return nil, core.Errorf(core.CodeMessageTooLarge, "request body exceeds %d bytes", limit)
			case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
				return nil, &timeoutError{core.Errorf(core.CodeTimeout, "request body did not arrive in time (idle %s, whole request %s)", s.cfg.IdleTimeout, s.cfg.RequestTimeout)}
			}
			return nil, core.Errorf(core.CodeBadRequest, "read request body: %v", err)
		}
	}
}

// timeoutError is a client too slow to send its request: HTTP 408.
type timeoutError struct{ err *core.Error }

func (e *timeoutError) Error() string { return e.err.Error() }
func (e *timeoutError) Unwrap() error { return e.err }

// fail answers with err's status and body; a slow client gets 408.
func fail(w http.ResponseWriter, err error) {
	var te *timeoutError
	if errors.As(err, &te) {
		writeErrorStatus(w, http.StatusRequestTimeout, err)
		return
	}
	writeError(w, err)
}

// ok answers status with v as JSON.
func (c *call) ok(status int, v any) { writeJSON(c.w, status, v) }

// fail answers with err's status and body.
func (c *call) fail(err error) { fail(c.w, err) }

// decode reads the JSON body into v, rejecting unknown fields and
// trailing data. An empty body leaves v as it is when optional.
func (c *call) decode(v any, optional bool) error {
	if len(bytes.TrimSpace(c.body)) == 0 {
		if optional {
			return nil
		}
		return core.Errorf(core.CodeBadRequest, "a JSON body is required")
	}
	return decodeStrict(c.body, v)
}

// decodeStrict decodes one JSON value into v: unknown fields and trailing
// data are errors.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return core.Errorf(core.CodeBadRequest, "invalid JSON: %s", jsonErr(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return core.Errorf(core.CodeBadRequest, "invalid JSON: data after the value")
	}
	return nil
}

// jsonErr makes a decoder error readable.
func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	}
	return err.Error()
}

// run executes one action for c's principal and answers with its result.
func (c *call) run(status int, name string, prm params) {
	// The action outlives a client that goes away (as batch actions do),
	// so that a retry with the same Idempotency-Key finds its outcome.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), c.s.cfg.ActionTimeout)
	defer cancel()
	res, err := c.s.exec(ctx, c.p, name, prm)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(status, res)
}
