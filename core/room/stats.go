package room

import (
	"sync/atomic"

	"github.com/parleyhq/parley/core/sfu"
)

// Stats are the node's control- and media-plane counts. Counters include
// tracks that have already ended.
type Stats struct {
	Rooms            int
	Participants     int
	Tracks           int
	Subscriptions    int
	PacketsIn        uint64 // RTP packets received from publishers
	BytesIn          uint64
	PacketsOut       uint64 // RTP packets forwarded to subscribers
	NacksServed      uint64
	KeyframeRequests uint64
	PausedDrops      uint64
}

// retired accumulates the counters of tracks that ended.
type retired struct {
	packetsIn, bytesIn, packetsOut, nacks, keyframes, paused atomic.Uint64
}

func (r *retired) add(s sfu.ForwarderStats) {
	r.packetsIn.Add(s.Packets)
	r.bytesIn.Add(s.Bytes)
	r.packetsOut.Add(s.Forwarded)
	r.nacks.Add(s.NacksServed)
	r.keyframes.Add(s.KeyframeRequests)
	r.paused.Add(s.PausedDrops)
}

func (s *Stats) add(f sfu.ForwarderStats) {
	s.PacketsIn += f.Packets
	s.BytesIn += f.Bytes
	s.PacketsOut += f.Forwarded
	s.NacksServed += f.NacksServed
	s.KeyframeRequests += f.KeyframeRequests
	s.PausedDrops += f.PausedDrops
}

// Stats returns current counts. It takes each room's lock briefly.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	st := Stats{
		Rooms:            len(rooms),
		PacketsIn:        m.retired.packetsIn.Load(),
		BytesIn:          m.retired.bytesIn.Load(),
		PacketsOut:       m.retired.packetsOut.Load(),
		NacksServed:      m.retired.nacks.Load(),
		KeyframeRequests: m.retired.keyframes.Load(),
		PausedDrops:      m.retired.paused.Load(),
	}
	for _, r := range rooms {
		r.mu.Lock()
		st.Participants += len(r.participants)
		for _, p := range r.participants {
			st.Tracks += len(p.tracks)
			st.Subscriptions += len(p.subscribed)
			for _, t := range p.tracks {
				st.add(t.f.Stats())
			}
		}
		r.mu.Unlock()
	}
	return st
}
