package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/parleyhq/parley/core/protocol"
	"github.com/pion/webrtc/v4"
)

// State is the client's connection state.
type State int

// Connection states, in the order a client normally goes through them.
const (
	// StateNew is a client that has not connected yet.
	StateNew State = iota
	// StateConnecting is a client dialing and joining.
	StateConnecting
	// StateConnected is a client whose session is joined and whose signaling
	// connection is up.
	StateConnected
	// StateReconnecting is a client whose signaling connection dropped and
	// that is resuming its session. Media keeps flowing meanwhile.
	StateReconnecting
	// StateClosed is a client that left, was closed, or lost its session.
	StateClosed
)

// String returns the state's lowercase name.
func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Client is a participant in one Parley room. Create it with New (or Dial),
// register callbacks, then Connect. All methods are safe for concurrent use.
type Client struct {
	url       string
	token     string
	transport Transport // resolved: never TransportAuto
	cfg       config
	api       *webrtc.API
	log       *slog.Logger

	ids atomic.Uint64

	// ctx lives as long as the client; shutdown cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	signals      *queue[protocol.Message] // sub_offer and trickle, for the worker
	callbacks    *queue[func()]           // user callbacks, for the dispatcher
	wg           sync.WaitGroup           // every goroutine but the supervisor and dispatcher
	done         chan struct{}            // closed once torn down
	dispatchDone chan struct{}            // closed when the dispatcher exits
	inCallback   atomic.Bool
	pubSem       chan struct{} // serializes publisher negotiations

	mu         sync.Mutex
	started    bool  // Connect was called
	joined     bool  // the join succeeded
	closed     bool  // shutdown began
	leaving    bool  // Leave was called: a dropped socket is not resumed
	err        error // why the client closed; nil after Leave or Close
	noResume   error // set by a closing event: do not resume, close with it
	state      State
	conn       *signalConn   // the usable connection; nil while reconnecting
	connReady  chan struct{} // closed when conn is set again
	dialing    *signalConn   // a connection being joined or resumed
	session    protocol.SessionInfo
	iceServers []webrtc.ICEServer
	room       roomState
	pub, sub   *peer
	pubErr     error                  // set when the publisher is beyond repair
	local      map[string]*LocalTrack // published tracks by client track id
	h          handlers
	moves      moveState // redirects and moves (redirect.go)
}

// New returns a client for the signaling endpoint at url that will join the
// room token names: ws://host:7880/v1/signal (or wss://) for WebSocket,
// https://host:7071/v1/signal for WebTransport; WithTransport overrides the
// choice. It does no I/O: register callbacks, then call Connect.
func New(rawURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: parse url: %w", err)
	}
	if token == "" {
		return nil, errors.New("client: empty token")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, fmt.Errorf("client: %w", cfg.err)
	}
	transport, err := resolveTransport(cfg.transport, u.Scheme)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	api, err := cfg.newAPI()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		url:          rawURL,
		token:        token,
		transport:    transport,
		cfg:          cfg,
		api:          api,
		log:          cfg.log,
		signals:      newQueue[protocol.Message](),
		callbacks:    newQueue[func()](),
		done:         make(chan struct{}),
		dispatchDone: make(chan struct{}),
		pubSem:       make(chan struct{}, 1),
		connReady:    make(chan struct{}),
		room:         newRoomState(),
		local:        make(map[string]*LocalTrack),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Dial creates a client and connects it. Callbacks registered after Dial
// returns may miss the first events (tracks of participants already in the
// room, for example); use New and Connect to register them first.
func Dial(ctx context.Context, url, token string, opts ...Option) (*Client, error) {
	c, err := New(url, token, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Connect dials the signaling endpoint and joins the room. It returns once
// the join is answered; the room's participants are then in Participants.
// A client connects once: after a failed Connect, Close it and make another.
func (c *Client) Connect(ctx context.Context) error {
	if err := c.begin(); err != nil {
		return fmt.Errorf("client: connect: %w", err)
	}
	resp, conn, err := c.joinFollowing(ctx)
	if err != nil {
		c.shutdown(err)
		c.cleanup()
		return fmt.Errorf("client: connect: %w", err)
	}
	c.mu.Lock()
	c.dialing = nil
	c.conn = conn
	close(c.connReady)
	c.joined = true
	c.session = resp.Session
	c.iceServers = c.iceServersFrom(resp.ICEServers)
	c.mu.Unlock()
	c.setState(StateConnected)
	c.spawn(func() { c.ping(conn) })
	if !c.spawnSupervisor(conn) {
		c.cleanup()
		return fmt.Errorf("client: connect: %w", ErrClosed)
	}
	return nil
}

// begin marks the client started and runs its worker and dispatcher.
func (c *Client) begin() error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.started:
		c.mu.Unlock()
		return ErrAlreadyConnected
	}
	c.started = true
	c.mu.Unlock()
	go c.dispatch()
	c.spawn(c.work)
	c.setState(StateConnecting)
	return nil
}

// join dials and sends join. The snapshot is applied on the read loop, before
// any event that follows the response.
func (c *Client) join(ctx context.Context) (*protocol.JoinResponse, *signalConn, error) {
	req := protocol.JoinRequest{Token: c.token, AutoSubscribe: c.cfg.autoSubscribe, Metadata: c.cfg.metadata}
	return c.handshake(ctx, protocol.TypeJoin, req)
}

// handshake dials a connection, starts its read loop and makes the join or
// resume request on it. On failure the connection is closed.
func (c *Client) handshake(ctx context.Context, typ string, req any) (*protocol.JoinResponse, *signalConn, error) {
	url, tr := c.target()
	conn, err := dialSignal(ctx, url, tr, &c.cfg, c.log)
	if err != nil {
		return nil, nil, err
	}
	conn.onEvent = c.onEvent
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.close(nil)
		return nil, nil, ErrClosed
	}
	c.dialing = conn
	c.mu.Unlock()
	if !c.spawn(conn.readLoop) {
		conn.close(nil)
		return nil, nil, ErrClosed
	}
	var resp protocol.JoinResponse
	var decodeErr error
	hook := func(m protocol.Message) {
		if m.Err() != nil {
			return
		}
		if decodeErr = protocol.DecodeDataLenient(&m, &resp); decodeErr == nil {
			c.applySnapshot(&resp, typ == protocol.TypeResume)
		}
	}
	_, err = conn.call(ctx, c.nextID(), typ, req, hook)
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		conn.close(nil)
		if cerr := c.closingErr(); cerr != nil && !isServerError(err) {
			err = cerr // the server said why before closing
		}
		return nil, nil, fmt.Errorf("%s: %w", typ, err)
	}
	return &resp, conn, nil
}

func (c *Client) iceServersFrom(announced []protocol.ICEServer) []webrtc.ICEServer {
	if c.cfg.iceServers != nil {
		return c.cfg.iceServers
	}
	out := make([]webrtc.ICEServer, 0, len(announced))
	for _, s := range announced {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// Leave tells the server the participant leaves, then tears the client down
// as Close does. The teardown happens even when the request fails.
func (c *Client) Leave(ctx context.Context) error {
	c.mu.Lock()
	c.leaving = true
	c.mu.Unlock()
	err := c.call(ctx, protocol.TypeLeave, nil, nil)
	c.shutdown(nil)
	c.wait()
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("client: leave: %w", err)
	}
	return nil
}

// Close tears the client down without leaving: the server keeps the
// participant for its resume grace period. It closes the signaling connection
// and both peer connections and waits for the client's goroutines, then
// delivers OnClose. Close may be called from a callback (it then returns
// without waiting for the callback goroutine) and more than once.
func (c *Client) Close() error {
	c.shutdown(nil)
	c.wait()
	return nil
}

// Done is closed when the client has been torn down.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client closed: nil while it runs and after Leave or
// Close, otherwise an error matching ErrResumeFailed, ErrServerClosed or
// ErrDisconnected.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Transport returns the transport the client's signaling uses: chosen with
// WithTransport or by the URL's scheme.
func (c *Client) Transport() Transport {
	_, tr := c.target()
	return tr
}

// State returns the connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// wait waits for the teardown begun by shutdown.
func (c *Client) wait() {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return
	}
	<-c.done
	if !c.inCallback.Load() {
		<-c.dispatchDone
	}
}

// shutdown begins the teardown once: it records why, cancels the client's
// context and closes the signaling connection. The supervisor (or Connect,
// before there is one) finishes the job in cleanup.
func (c *Client) shutdown(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = cause
	conn, dialing := c.conn, c.dialing
	started := c.started
	c.mu.Unlock()
	c.cancel()
	for _, sc := range []*signalConn{conn, dialing} {
		if sc != nil {
			sc.close(nil)
		}
	}
	if !started {
		close(c.done)
	}
}

// cleanup finishes the teardown: peer connections closed, goroutines
// stopped, final callbacks queued. It runs once, after shutdown.
func (c *Client) cleanup() {
	c.mu.Lock()
	conn, dialing := c.conn, c.dialing
	pub, sub := c.pub, c.sub
	c.conn, c.dialing, c.pub, c.sub = nil, nil, nil, nil
	joined, cause := c.joined, c.err
	c.mu.Unlock()
	for _, sc := range []*signalConn{conn, dialing} {
		if sc != nil {
			sc.close(nil)
		}
	}
	for _, p := range []*peer{pub, sub} {
		if p != nil {
			p.close()
		}
	}
	c.wg.Wait()
	c.setState(StateClosed)
	if joined {
		c.emit(func(h *handlers) {
			if h.onClose != nil {
				h.onClose(cause)
			}
		})
	}
	c.callbacks.close()
	close(c.done)
}

// spawn runs f on a goroutine the client waits for in cleanup. It reports
// false, not running f, once the client is closed.
func (c *Client) spawn(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

func (c *Client) nextID() string {
	return strconv.FormatUint(c.ids.Add(1), 10)
}

// setState records s and reports the change to OnStateChange.
func (c *Client) setState(s State) {
	c.mu.Lock()
	if c.state == s || c.state == StateClosed {
		c.mu.Unlock()
		return
	}
	c.state = s
	c.mu.Unlock()
	c.log.Debug("client state", "state", s)
	c.emit(func(h *handlers) {
		if h.onState != nil {
			h.onState(s)
		}
	})
}

// waitConn returns the usable signaling connection, waiting while the client
// reconnects.
func (c *Client) waitConn(ctx context.Context) (*signalConn, error) {
	for {
		c.mu.Lock()
		conn, ready, closed, joined, started := c.conn, c.connReady, c.closed, c.joined, c.started
		c.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case !joined && !started:
			return nil, ErrNotConnected
		case !joined:
			// Connect is still running: a sub_offer can arrive right after
			// the join response, before Connect marks the client joined.
			// Wait for it (ready closes then) rather than drop the answer.
		case conn != nil:
			return conn, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// call makes a request on the current connection and decodes the response's
// data into out (if not nil). A failed response is a *core.Error.
func (c *Client) call(ctx context.Context, typ string, data, out any) error {
	conn, err := c.waitConn(ctx)
	if err != nil {
		return err
	}
	msg, err := conn.call(ctx, c.nextID(), typ, data, nil)
	if err != nil {
		return err
	}
	if out != nil {
		return protocol.DecodeDataLenient(&msg, out)
	}
	return nil
}
