package client

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/parleyhq/parley/core/protocol"
	"github.com/pion/webrtc/v4"
)

// peer is one of the client's two peer connections, with the trickle ICE
// plumbing both ways: remote candidates wait for the remote description,
// local ones for the first completed negotiation (before that the server has
// no peer connection to add them to) and for a live signaling connection.
type peer struct {
	c      *Client
	target string // protocol.TargetPublisher or protocol.TargetSubscriber
	pc     *webrtc.PeerConnection

	flushMu sync.Mutex // one local flush at a time keeps candidates in order

	mu            sync.Mutex
	remoteReady   bool
	remotePending []webrtc.ICECandidateInit
	localReady    bool
	localPending  []webrtc.ICECandidateInit
}

func (c *Client) newPeer(target string, servers []webrtc.ICEServer) (*peer, error) {
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{ICEServers: servers})
	if err != nil {
		return nil, fmt.Errorf("new %s peer connection: %w", target, err)
	}
	p := &peer{c: c, target: target, pc: pc}
	pc.OnICECandidate(p.onLocalCandidate)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.log.Debug("peer connection state", "target", target, "state", s)
	})
	return p, nil
}

// onLocalCandidate is pion's OnICECandidate. The end of gathering (nil) is
// not signaled: the server's ICE agent does not wait for it.
func (p *peer) onLocalCandidate(cand *webrtc.ICECandidate) {
	if cand == nil {
		return
	}
	p.mu.Lock()
	p.localPending = append(p.localPending, cand.ToJSON())
	ready := p.localReady
	p.mu.Unlock()
	if ready {
		p.flushLocal()
	}
}

// openLocal lets local candidates go out, now that the server has this
// connection's session description.
func (p *peer) openLocal() {
	p.mu.Lock()
	p.localReady = true
	p.mu.Unlock()
	p.flushLocal()
}

// flushLocal sends pending local candidates; those it cannot send (no
// signaling connection) stay pending for the next flush.
func (p *peer) flushLocal() {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	if !p.localReady {
		p.mu.Unlock()
		return
	}
	pending := p.localPending
	p.localPending = nil
	p.mu.Unlock()
	for i, cand := range pending {
		if !p.c.sendCandidate(p.target, cand) {
			p.mu.Lock()
			p.localPending = slices.Concat(pending[i:], p.localPending)
			p.mu.Unlock()
			return
		}
	}
}

// addRemote adds a trickled remote candidate, or keeps it until the remote
// description is set.
func (p *peer) addRemote(cand webrtc.ICECandidateInit) error {
	p.mu.Lock()
	if !p.remoteReady {
		p.remotePending = append(p.remotePending, cand)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if err := p.pc.AddICECandidate(cand); err != nil {
		return fmt.Errorf("add %s candidate: %w", p.target, err)
	}
	return nil
}

// remoteSet adds the candidates that waited for the remote description.
func (p *peer) remoteSet() {
	p.mu.Lock()
	p.remoteReady = true
	pending := p.remotePending
	p.remotePending = nil
	p.mu.Unlock()
	for _, cand := range pending {
		if err := p.pc.AddICECandidate(cand); err != nil {
			p.c.log.Warn("adding buffered candidate failed", "target", p.target, "error", err)
		}
	}
}

func (p *peer) close() {
	if err := p.pc.GracefulClose(); err != nil {
		p.c.log.Debug("closing peer connection", "target", p.target, "error", err)
	}
}

// sendCandidate trickles a local candidate. It reports false when there is
// no signaling connection to send it on.
func (c *Client) sendCandidate(target string, cand webrtc.ICECandidateInit) bool {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return false
	}
	t := protocol.Trickle{Target: target, Candidate: protocol.ICECandidate{
		Candidate:        cand.Candidate,
		SDPMid:           cand.SDPMid,
		SDPMLineIndex:    cand.SDPMLineIndex,
		UsernameFragment: cand.UsernameFragment,
	}}
	if err := conn.notify(c.nextID(), protocol.TypeTrickle, t); err != nil {
		c.log.Debug("trickle not sent", "target", target, "error", err)
		return false
	}
	return true
}

// handleTrickle applies a candidate from the server.
func (c *Client) handleTrickle(msg *protocol.Message) error {
	var t protocol.Trickle
	if err := protocol.DecodeDataLenient(msg, &t); err != nil {
		return err
	}
	var p *peer
	var err error
	switch t.Target {
	case protocol.TargetSubscriber:
		p, err = c.subPeer()
	case protocol.TargetPublisher:
		c.mu.Lock()
		p = c.pub
		c.mu.Unlock()
		if p == nil {
			err = errors.New("publisher candidate before any publish")
		}
	default:
		err = fmt.Errorf("trickle for unknown target %q", t.Target)
	}
	if err != nil {
		return err
	}
	return p.addRemote(webrtc.ICECandidateInit{
		Candidate:        t.Candidate.Candidate,
		SDPMid:           t.Candidate.SDPMid,
		SDPMLineIndex:    t.Candidate.SDPMLineIndex,
		UsernameFragment: t.Candidate.UsernameFragment,
	})
}
