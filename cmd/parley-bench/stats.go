package main

import (
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// recvTrack is what one receiver recorded of one forwarded track.
type recvTrack struct {
	mu         sync.Mutex
	known      bool   // track is valid
	track      uint32 // the publisher's track index
	seen       []uint64
	packets    uint64 // packets received while measuring (duplicates included)
	bytes      uint64 // RTP bytes received while measuring
	duplicates uint64
	latency    []int64 // ns, while measuring
}

// record notes one received packet of size n bytes.
func (r *recvTrack) record(s stamp, n int, nowNS int64, measuring bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.known {
		r.known, r.track = true, s.track
	}
	if s.track != r.track {
		return // not this track's packet; cannot happen with one track per reader
	}
	w := int(s.seq / 64)
	if w >= len(r.seen) {
		r.seen = slices.Grow(r.seen, w+1-len(r.seen))[:w+1]
	}
	bit := uint64(1) << (s.seq % 64)
	dup := r.seen[w]&bit != 0
	r.seen[w] |= bit
	if !measuring {
		return
	}
	r.packets++
	r.bytes += uint64(n)
	if dup {
		r.duplicates++
		return
	}
	r.latency = append(r.latency, nowNS-s.sentNS)
}

// receivedIn counts the distinct sequence numbers in [from, to) received.
func (r *recvTrack) receivedIn(from, to uint32) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for seq := from; seq < to; {
		w := int(seq / 64)
		if w >= len(r.seen) {
			break
		}
		word := r.seen[w]
		lo, hi := seq%64, uint32(64)
		if end := to - seq + lo; end < hi {
			hi = end
		}
		mask := ^uint64(0) << lo
		if hi < 64 {
			mask &= (uint64(1) << hi) - 1
		}
		n += uint64(bits.OnesCount64(word & mask))
		seq += hi - lo
	}
	return n
}

// receiver is a client that receives media: its join time and its tracks.
type receiver struct {
	joinStartNS  int64        // benchmark clock at Connect
	firstMediaNS atomic.Int64 // benchmark clock at the first media packet, 0 before
	mu           sync.Mutex
	tracks       []*recvTrack
}

// addTrack registers a new forwarded track of the receiver.
func (r *receiver) addTrack() *recvTrack {
	t := &recvTrack{}
	r.mu.Lock()
	r.tracks = append(r.tracks, t)
	r.mu.Unlock()
	return t
}

// trackList returns the receiver's tracks.
func (r *receiver) trackList() []*recvTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tracks)
}

// flowing counts the receiver's tracks that have delivered media.
func (r *receiver) flowing() int {
	n := 0
	for _, t := range r.trackList() {
		t.mu.Lock()
		if t.known {
			n++
		}
		t.mu.Unlock()
	}
	return n
}

// Dist summarises a distribution of durations, in milliseconds.
type Dist struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// summarize sorts ns (in place) and returns its distribution.
func summarize(ns []int64) Dist {
	if len(ns) == 0 {
		return Dist{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	ms := func(v float64) float64 { return math.Round(v/float64(time.Millisecond)*1000) / 1000 }
	return Dist{
		Count: len(ns),
		P50:   ms(float64(percentile(ns, 0.50))),
		P99:   ms(float64(percentile(ns, 0.99))),
		Max:   ms(float64(ns[len(ns)-1])),
		Mean:  ms(sum / float64(len(ns))),
	}
}

// percentile returns the nearest-rank q-quantile of sorted (q in (0,1]).
func percentile(sorted []int64, q float64) int64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
