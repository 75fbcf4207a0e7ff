package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Every connection of the cluster transport is mutual TLS on the node's one
// raft address. After the handshake the dialer sends one byte that says
// what the stream carries: hashicorp/raft's own protocol, or the Store's
// forwarding RPC.
const (
	streamRaft byte = 'R'
	streamRPC  byte = 'F'
)

var errCutOff = errors.New("raftstore: peer cut off")

// netLayer owns the listener and every connection of the cluster transport,
// in both directions, so that it can close them all at shutdown, cut a peer
// off (partition tests) or fence the node (watchdog).
type netLayer struct {
	ln        net.Listener
	advertise string
	creds     *credentials
	timeout   time.Duration
	log       *slog.Logger

	raftConns  chan net.Conn
	raftClosed chan struct{}
	raftOnce   sync.Once
	serveRPC   func(c *trackedConn)

	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	blocked map[string]bool
	fenced  bool
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

func newNetLayer(ln net.Listener, advertise string, creds *credentials, timeout time.Duration, log *slog.Logger) *netLayer {
	return &netLayer{
		ln: ln, advertise: advertise, creds: creds, timeout: timeout, log: log,
		raftConns:  make(chan net.Conn),
		raftClosed: make(chan struct{}),
		conns:      make(map[*trackedConn]struct{}),
		blocked:    make(map[string]bool),
		done:       make(chan struct{}),
	}
}

// start begins accepting; serveRPC handles forwarding streams on the
// accepting goroutine.
func (l *netLayer) start(serveRPC func(c *trackedConn)) {
	l.serveRPC = serveRPC
	l.wg.Add(1)
	go l.acceptLoop()
}

func (l *netLayer) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Warn("cluster transport: accept failed", "error", err)
			select {
			case <-l.done:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		l.wg.Add(1)
		go l.handleAccepted(raw)
	}
}

// handleAccepted runs the server side of the handshake and routes the
// stream. Forwarding streams are served on this goroutine.
func (l *netLayer) handleAccepted(raw net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.creds.server)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		l.log.Warn("cluster transport: handshake refused", "remote", raw.RemoteAddr().String(), "error", err)
		_ = raw.Close()
		return
	}
	var kind [1]byte
	_ = tc.SetReadDeadline(time.Now().Add(l.timeout))
	if _, err := tc.Read(kind[:]); err != nil {
		_ = tc.Close()
		return
	}
	_ = tc.SetReadDeadline(time.Time{})
	c := &trackedConn{Conn: tc, l: l, peer: peerName(tc.ConnectionState())}
	if !l.admit(c) {
		_ = tc.Close()
		return
	}
	switch kind[0] {
	case streamRaft:
		select {
		case l.raftConns <- c:
		case <-l.raftClosed:
			_ = c.Close()
		case <-l.done:
			_ = c.Close()
		}
	case streamRPC:
		l.serveRPC(c)
	default:
		_ = c.Close()
	}
}

// dial opens an authenticated stream of the given kind to addr.
func (l *netLayer) dial(ctx context.Context, addr string, kind byte) (*trackedConn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, l.creds.client)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = tc.SetWriteDeadline(dl)
	}
	if _, err := tc.Write([]byte{kind}); err != nil {
		_ = tc.Close()
		return nil, err
	}
	_ = tc.SetWriteDeadline(time.Time{})
	c := &trackedConn{Conn: tc, l: l, peer: peerName(tc.ConnectionState())}
	if !l.admit(c) {
		_ = tc.Close()
		return nil, fmt.Errorf("%w: %s", errCutOff, addr)
	}
	return c, nil
}

// admit registers c unless the layer is closed or fenced or c's peer is
// cut off.
func (l *netLayer) admit(c *trackedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.fenced || l.blocked[c.peer] {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *netLayer) forget(c *trackedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// closeMatching closes every connection whose peer matches. match runs
// with l.mu held.
func (l *netLayer) closeMatching(match func(peer string) bool) {
	l.mu.Lock()
	var victims []*trackedConn
	for c := range l.conns {
		if match(c.peer) {
			victims = append(victims, c)
		}
	}
	l.mu.Unlock()
	for _, c := range victims {
		_ = c.Close()
	}
}

// cutOff drops every connection to or from the named peers and refuses new
// ones until restore. It simulates a network partition around this node.
func (l *netLayer) cutOff(peers ...string) {
	l.mu.Lock()
	for _, p := range peers {
		l.blocked[p] = true
	}
	l.mu.Unlock()
	l.closeMatching(func(p string) bool { return l.blocked[p] })
}

// restore undoes cutOff for the named peers.
func (l *netLayer) restore(peers ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range peers {
		delete(l.blocked, p)
	}
}

// fence drops every connection and refuses all new ones for good: the node
// can no longer heartbeat, vote or answer, so the others elect a leader
// without it.
func (l *netLayer) fence() {
	l.mu.Lock()
	l.fenced = true
	l.mu.Unlock()
	l.closeMatching(func(string) bool { return true })
}

// close stops accepting, closes every connection and waits for the
// layer's goroutines.
func (l *netLayer) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.wg.Wait()
		return
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
	}
	l.closeMatching(func(string) bool { return true })
	l.wg.Wait()
}

// trackedConn is a TLS connection registered with its layer.
type trackedConn struct {
	net.Conn
	l    *netLayer
	peer string // node id from the peer's certificate
	once sync.Once
	err  error
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.forget(c)
		c.err = c.Conn.Close()
	})
	return c.err
}

// raftStream is the raft.StreamLayer view of a netLayer.
type raftStream struct{ l *netLayer }

var _ raft.StreamLayer = raftStream{}

// Accept returns the next inbound raft stream.
func (s raftStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.l.raftConns:
		return c, nil
	case <-s.l.raftClosed:
		return nil, net.ErrClosed
	case <-s.l.done:
		return nil, net.ErrClosed
	}
}

// Close stops handing streams to raft; the layer itself stays up for the
// forwarding RPC until the Store closes it.
func (s raftStream) Close() error {
	s.l.raftOnce.Do(func() { close(s.l.raftClosed) })
	return nil
}

// Addr returns the advertised address, which raft records as ours.
func (s raftStream) Addr() net.Addr { return advertisedAddr(s.l.advertise) }

// Dial opens a raft stream to address.
func (s raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.l.dial(ctx, string(address), streamRaft)
}

type advertisedAddr string

// Network implements net.Addr.
func (a advertisedAddr) Network() string { return "tcp" }

// String implements net.Addr.
func (a advertisedAddr) String() string { return string(a) }

// unpipelined is the network transport without pipelined replication:
// raft then sends a follower one AppendEntries at a time (each still
// carries up to MaxAppendEntries entries). With pipelining, a shutdown
// racing a follower that stopped reading could leave the replication
// goroutine blocked on a send forever (seen here as a 15 s shutdown hang;
// the same deadlock is reported against hashicorp/raft elsewhere). The
// state here is small and slow-changing, so the pipeline's throughput is
// not needed.
type unpipelined struct{ *raft.NetworkTransport }

// AppendEntriesPipeline implements raft.Transport by declining, which
// makes raft fall back to synchronous replication.
func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
