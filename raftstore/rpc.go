package raftstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// The forwarding RPC runs on streams of the cluster transport (mutual TLS,
// stream byte 'F'). Each stream carries request/response pairs in turn:
//
//	request:  u32 length | op | flags | body
//	response: u32 length | status (0 ok, 1 error) | body
//
// An error body is JSON {"err": wire name, "detail": text}. A stream is
// reused for further requests; a client keeps a few idle ones per peer.
const (
	opApply     byte = 1 // body: encoded command; answer: Result as JSON
	opReadIndex byte = 2 // answer: u64 index every consistent read must wait for
	opJoin      byte = 3 // body: {"id","addr"}; adds a voter
	opRemove    byte = 4 // body: {"id"}; removes a node
	opStatus    byte = 5 // answer: Status as JSON

	// flagNoForward asks the receiver to answer ErrNotLeader rather than
	// forward again: a follower that forwards a write sets it, so that a
	// stale leader hint never makes a request bounce between nodes.
	flagNoForward byte = 1

	maxFrame = MaxCommandSize + 64<<10

	// rpcMaxIdle is how many idle forwarding streams a node keeps per peer.
	rpcMaxIdle = 64
)

type rpcError struct {
	Err    string `json:"err"`
	Detail string `json:"detail,omitempty"`
}

type memberRequest struct {
	ID   string `json:"id"`
	Addr string `json:"addr,omitempty"`
}

func writeFrame(w io.Writer, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > maxFrame {
		return fmt.Errorf("%w: frame of %d bytes", ErrTooLarge, n)
	}
	buf := make([]byte, 4, 4+n)
	binary.BigEndian.PutUint32(buf, uint32(n))
	for _, p := range parts {
		buf = append(buf, p...)
	}
	_, err := w.Write(buf)
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrTooLarge, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// serveRPC answers requests on one forwarding stream until it closes.
func (s *Store) serveRPC(c *trackedConn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := readFrame(br)
		if err != nil || len(req) < 2 {
			return
		}
		body, err := s.handleRPC(req[0], req[1], req[2:])
		status := []byte{0}
		if err != nil {
			status[0] = 1
			body, _ = json.Marshal(rpcError{Err: wireName(err), Detail: err.Error()})
		}
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.TransportTimeout))
		if err := writeFrame(c, status, body); err != nil {
			return
		}
	}
}

// handleRPC runs one request under the apply bound.
func (s *Store) handleRPC(op, flags byte, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
	defer cancel()
	switch op {
	case opApply:
		var res Result
		var err error
		if flags&flagNoForward != 0 {
			res, err = s.applyLocal(ctx, body)
		} else {
			res, err = s.applyEncoded(ctx, body)
		}
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	case opReadIndex:
		idx, err := s.readIndexLocal(ctx)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(nil, idx), nil
	case opJoin, opRemove:
		var m memberRequest
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCommand, err)
		}
		local := flags&flagNoForward != 0
		switch {
		case op == opJoin && local:
			return nil, s.addVoterLocal(ctx, m.ID, m.Addr)
		case op == opJoin:
			return nil, s.addVoter(ctx, m.ID, m.Addr)
		case local:
			return nil, s.removeLocal(ctx, m.ID)
		default:
			return nil, s.removeNode(ctx, m.ID)
		}
	case opStatus:
		return json.Marshal(s.Status())
	}
	return nil, fmt.Errorf("%w: unknown rpc op %d", ErrBadCommand, op)
}

// transportError is a forwarding call that failed in transit. sent tells
// whether the request may have reached the peer.
type transportError struct {
	sent bool
	err  error
}

// Error implements error.
func (e *transportError) Error() string { return "raftstore: forward: " + e.err.Error() }

// Unwrap returns the cause.
func (e *transportError) Unwrap() error { return e.err }

// rpcClient calls peers' forwarding RPC over pooled streams.
type rpcClient struct {
	layer   *netLayer
	maxIdle int

	mu   sync.Mutex
	idle map[string][]*rpcConn
}

type rpcConn struct {
	c  *trackedConn
	br *bufio.Reader
}

func newRPCClient(layer *netLayer, maxIdle int) *rpcClient {
	return &rpcClient{layer: layer, maxIdle: maxIdle, idle: map[string][]*rpcConn{}}
}

func (rc *rpcClient) get(ctx context.Context, addr string) (*rpcConn, error) {
	rc.mu.Lock()
	if list := rc.idle[addr]; len(list) > 0 {
		c := list[len(list)-1]
		rc.idle[addr] = list[:len(list)-1]
		rc.mu.Unlock()
		return c, nil
	}
	rc.mu.Unlock()
	c, err := rc.layer.dial(ctx, addr, streamRPC)
	if err != nil {
		return nil, err
	}
	return &rpcConn{c: c, br: bufio.NewReader(c)}, nil
}

func (rc *rpcClient) put(addr string, c *rpcConn) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.idle[addr]) < rc.maxIdle {
		rc.idle[addr] = append(rc.idle[addr], c)
		return
	}
	_ = c.c.Close()
}

// call sends one request to addr and returns the answer's body.
func (rc *rpcClient) call(ctx context.Context, addr string, op, flags byte, body []byte) ([]byte, error) {
	c, err := rc.get(ctx, addr)
	if err != nil {
		return nil, &transportError{err: err}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(rc.layer.timeout)
	}
	_ = c.c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	resp, err := rc.roundTrip(c, op, flags, body)
	if !stop() || err != nil {
		// A failed stream, or one whose deadline ctx already poisoned,
		// is not reused.
		_ = c.c.Close()
		if err != nil {
			return nil, err
		}
	} else {
		_ = c.c.SetDeadline(time.Time{})
		rc.put(addr, c)
	}
	if resp[0] != 0 {
		var e rpcError
		if err := json.Unmarshal(resp[1:], &e); err != nil {
			return nil, fmt.Errorf("raftstore: bad error answer from %s: %w", addr, err)
		}
		return nil, fromWire(e.Err, e.Detail)
	}
	return resp[1:], nil
}

func (rc *rpcClient) roundTrip(c *rpcConn, op, flags byte, body []byte) ([]byte, error) {
	if err := writeFrame(c.c, []byte{op, flags}, body); err != nil {
		// A failed write may still have delivered the frame.
		return nil, &transportError{sent: true, err: err}
	}
	resp, err := readFrame(c.br)
	if err != nil {
		return nil, &transportError{sent: true, err: err}
	}
	if len(resp) == 0 {
		return nil, &transportError{sent: true, err: errors.New("empty answer")}
	}
	return resp, nil
}

// close drops the idle streams.
func (rc *rpcClient) close() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for addr, list := range rc.idle {
		for _, c := range list {
			_ = c.c.Close()
		}
		delete(rc.idle, addr)
	}
}
