package sfu

import (
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// candidateBuffer holds remote ICE candidates that arrive before the remote
// description, and applies them once it is set.
type candidateBuffer struct {
	mu      sync.Mutex
	pending []webrtc.ICECandidateInit
}

// add applies c, or keeps it until flush when pc has no remote description.
func (b *candidateBuffer) add(pc *webrtc.PeerConnection, c webrtc.ICECandidateInit) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pc.RemoteDescription() == nil {
		b.pending = append(b.pending, c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("add ice candidate: %w", err)
	}
	return nil
}

// flush applies the kept candidates; call after setting a remote description.
func (b *candidateBuffer) flush(pc *webrtc.PeerConnection) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var first error
	for _, c := range b.pending {
		if err := pc.AddICECandidate(c); err != nil && first == nil {
			first = fmt.Errorf("add buffered ice candidate: %w", err)
		}
	}
	b.pending = nil
	return first
}

// onICECandidate adapts a handler taking candidate inits to pion's callback.
func onICECandidate(h func(*webrtc.ICECandidateInit)) func(*webrtc.ICECandidate) {
	return func(c *webrtc.ICECandidate) {
		if h == nil {
			return
		}
		if c == nil {
			h(nil)
			return
		}
		init := c.ToJSON()
		h(&init)
	}
}
