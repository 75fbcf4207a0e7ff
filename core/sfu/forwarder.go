package sfu

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// rateWindow is the window of the forwarder's incoming bitrate estimate.
const rateWindow = 250 * time.Millisecond

// rateStale is how long without packets makes the bitrate estimate 0.
const rateStale = 2 * time.Second

// ForwarderStats are counters of one forwarded track, cheap to read.
type ForwarderStats struct {
	Packets          uint64 // RTP packets received from the publisher
	Bytes            uint64 // RTP bytes received from the publisher
	Bitrate          uint64 // moving estimate of the incoming bitrate, bits/s
	Subscribers      int    // down tracks currently attached
	KeyframeRequests uint64 // PLIs sent to the publisher
	NacksServed      uint64 // packets retransmitted from the cache on NACK
	PausedDrops      uint64 // packets not sent to paused (congested) subscribers
	Forwarded        uint64 // packets written to subscribers (fan-out minus paused drops)
}

// Forwarder receives one published track and fans it out to subscribers.
type Forwarder struct {
	id, clientTrackID, streamID, mid string
	kind                             webrtc.RTPCodecType
	codec                            webrtc.RTPCodecParameters
	codecKind                        codecKind
	log                              *slog.Logger

	cache *packetCache
	hdr   rtp.Header // parse scratch, owned by the read goroutine
	batch *batchConn // sends a fan-out's datagrams together; nil: one by one

	downTracks atomic.Pointer[[]*downTrack] // copy-on-write, read lock-free
	mu         sync.Mutex                   // serializes downTracks updates

	// sendPLI asks the publisher for a keyframe; nil when there is no
	// publisher connection (benchmarks).
	sendPLI  func() error
	throttle time.Duration
	kfReq    chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// Incoming bitrate estimate; the window fields belong to the read goroutine.
	epoch      time.Time
	winStart   time.Duration
	winBytes   uint64
	bitrate    atomic.Uint64
	lastPacket atomic.Int64

	packets, bytes, keyframeRequests, nacksServed, pausedDrops atomic.Uint64
	fanout                                                     atomic.Uint64 // packets offered to down tracks

	// muted stops the fan-out (server-side mute); wasMuted, owned by the
	// read goroutine, remembers it so the first packet after an unmute
	// restarts every down track cleanly.
	muted    atomic.Bool
	wasMuted bool
}

// forwarderParams describe a forwarder to create.
type forwarderParams struct {
	id, clientTrackID, streamID, mid string
	kind                             webrtc.RTPCodecType
	codec                            webrtc.RTPCodecParameters
	cacheSize                        int
	throttle                         time.Duration
	sendPLI                          func() error
	batch                            *batchConn
	log                              *slog.Logger
}

// newForwarder returns a forwarder that is not yet reading.
func newForwarder(p forwarderParams) *Forwarder {
	f := &Forwarder{
		id: p.id, clientTrackID: p.clientTrackID, streamID: p.streamID, mid: p.mid,
		kind: p.kind, codec: p.codec, log: discardLogger(p.log),
		cache:    newPacketCache(p.cacheSize),
		batch:    p.batch,
		sendPLI:  p.sendPLI,
		throttle: p.throttle,
		kfReq:    make(chan struct{}, 1),
		done:     make(chan struct{}),
		epoch:    time.Now(),
	}
	if p.kind == webrtc.RTPCodecTypeVideo {
		f.codecKind = codecKindOf(p.codec.MimeType)
	}
	f.downTracks.Store(&[]*downTrack{})
	return f
}

// ID is the Parley track id ("TR_...").
func (f *Forwarder) ID() string { return f.id }

// ClientTrackID is the publisher's msid track id.
func (f *Forwarder) ClientTrackID() string { return f.clientTrackID }

// StreamID is the publisher's msid stream id.
func (f *Forwarder) StreamID() string { return f.streamID }

// Mid is the media section of the publisher's connection carrying the track.
func (f *Forwarder) Mid() string { return f.mid }

// Kind is audio or video.
func (f *Forwarder) Kind() webrtc.RTPCodecType { return f.kind }

// Codec is the negotiated codec.
func (f *Forwarder) Codec() webrtc.RTPCodecParameters { return f.codec }

// Done is closed when the forwarder's media has stopped.
func (f *Forwarder) Done() <-chan struct{} { return f.done }

// RequestKeyframe asks the publisher for a keyframe (throttled). Requests
// from many subscribers within one throttle interval yield one PLI. It never
// blocks and is a no-op for audio.
func (f *Forwarder) RequestKeyframe() {
	if f.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	select {
	case f.kfReq <- struct{}{}:
	default: // a request is already pending
	}
}

// SetMuted stops (true) or resumes (false) forwarding the track to every
// subscriber. Packets keep arriving, being cached and counted; while
// muted none is written to a down track. On resume each down track
// continues its sequence numbers without a gap and, for video, waits for
// a keyframe, which SetMuted requests. Safe for concurrent use.
func (f *Forwarder) SetMuted(muted bool) {
	if f.muted.Swap(muted) && !muted {
		f.RequestKeyframe()
	}
}

// Muted reports whether forwarding is stopped by SetMuted.
func (f *Forwarder) Muted() bool { return f.muted.Load() }

// Bitrate returns the moving estimate of the incoming bitrate in bits/s, 0
// when no media arrived recently.
func (f *Forwarder) Bitrate() uint64 {
	last := f.lastPacket.Load()
	if last == 0 || time.Since(f.epoch)-time.Duration(last) > rateStale {
		return 0
	}
	return f.bitrate.Load()
}

// Stats returns the forwarder's counters.
func (f *Forwarder) Stats() ForwarderStats {
	fanout, paused := f.fanout.Load(), f.pausedDrops.Load()
	return ForwarderStats{
		Forwarded:        fanout - min(fanout, paused),
		Packets:          f.packets.Load(),
		Bytes:            f.bytes.Load(),
		Bitrate:          f.Bitrate(),
		Subscribers:      len(*f.downTracks.Load()),
		KeyframeRequests: f.keyframeRequests.Load(),
		NacksServed:      f.nacksServed.Load(),
		PausedDrops:      paused,
	}
}

// ended reports whether the forwarder has stopped.
func (f *Forwarder) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// stop marks the forwarder ended and stops its keyframe goroutine.
func (f *Forwarder) stop() {
	f.stopOnce.Do(func() { close(f.done) })
}

// addDownTrack attaches d to the fan-out.
func (f *Forwarder) addDownTrack(d *downTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.downTracks.Load()
	next := make([]*downTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	f.downTracks.Store(&next)
}

// removeDownTrack detaches d from the fan-out.
func (f *Forwarder) removeDownTrack(d *downTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.downTracks.Load()
	next := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	f.downTracks.Store(&next)
}

// readLoop reads the publisher's track into the cache and forwards every
// packet until the track ends.
func (f *Forwarder) readLoop(track *webrtc.TrackRemote) {
	defer f.stop()
	for {
		buf := f.cache.spareBuf()
		n, _, err := track.Read(buf)
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) {
				continue
			}
			if !errors.Is(err, io.EOF) {
				f.log.Debug("track read ended", "track", f.id, "err", err)
			}
			return
		}
		f.forward(buf[:n])
	}
}

// rtcpLoop drains RTCP from the publisher (sender reports), so the receiver
// report interceptor sees it, until the receiver stops.
func (f *Forwarder) rtcpLoop(r *webrtc.RTPReceiver) {
	buf := make([]byte, maxPacketSize)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// keyframeLoop sends the PLIs RequestKeyframe asks for, at most one per
// throttle interval; requests arriving meanwhile are merged into one.
func (f *Forwarder) keyframeLoop() {
	var last time.Time
	for {
		select {
		case <-f.done:
			return
		case <-f.kfReq:
		}
		if wait := f.throttle - time.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-f.done:
				t.Stop()
				return
			case <-t.C:
			}
			select { // merge requests made while waiting
			case <-f.kfReq:
			default:
			}
		}
		last = time.Now()
		if f.sendPLI == nil {
			continue
		}
		if err := f.sendPLI(); err != nil {
			f.log.Debug("send pli", "track", f.id, "err", err)
			continue
		}
		f.keyframeRequests.Add(1)
	}
}

// forward handles one RTP packet from the publisher: parses its header once,
// caches it and writes it to every down track, the datagrams of a fan-out
// to two or more leaving in one batch. pkt is either the cache's
// spare buffer (read loop, stored without copying) or any other buffer
// (copied into the cache). It does not allocate.
func (f *Forwarder) forward(pkt []byte) {
	n, err := f.hdr.Unmarshal(pkt)
	if err != nil {
		return
	}
	end := len(pkt)
	f.hdr.PaddingSize = 0
	if f.hdr.Padding {
		pad := int(pkt[end-1])
		if end <= n || pad == 0 || end-pad < n {
			return
		}
		end -= pad
		f.hdr.PaddingSize = byte(pad)
	}
	f.packets.Add(1)
	f.bytes.Add(uint64(len(pkt)))
	f.measure(len(pkt))
	stored := f.cache.push(f.hdr.SequenceNumber, pkt)
	payload := stored[n:end]
	key := f.codecKind != codecOther && isKeyframe(f.codecKind, payload)
	dts := *f.downTracks.Load()
	if f.muted.Load() {
		f.wasMuted = true
		return
	}
	if f.wasMuted {
		f.wasMuted = false
		f.restart(dts)
	}
	f.fanout.Add(uint64(len(dts)))
	if len(dts) < 2 || f.batch == nil {
		for _, d := range dts {
			d.writeRTP(&f.hdr, payload, key)
		}
		return
	}
	f.batch.begin()
	for _, d := range dts {
		d.writeRTP(&f.hdr, payload, key)
	}
	f.batch.end()
}

// restart makes every down track start a new sequence epoch (no gap for
// the packets dropped while muted) and, for video, wait for a keyframe.
// Runs on the read goroutine.
func (f *Forwarder) restart(dts []*downTrack) {
	for _, d := range dts {
		d.resync = true
		if f.kind == webrtc.RTPCodecTypeVideo {
			d.state.CompareAndSwap(stateActive, stateResuming)
		}
	}
}

// measure updates the incoming bitrate estimate with a packet of n bytes.
func (f *Forwarder) measure(n int) {
	now := time.Since(f.epoch)
	f.lastPacket.Store(int64(now))
	if f.winStart == 0 {
		f.winStart = now
	}
	f.winBytes += uint64(n)
	elapsed := now - f.winStart
	if elapsed < rateWindow {
		return
	}
	inst := f.winBytes * 8 * uint64(time.Second) / uint64(elapsed)
	if old := f.bitrate.Load(); old != 0 {
		inst = (old*3 + inst) / 4
	}
	f.bitrate.Store(inst)
	f.winStart, f.winBytes = now, 0
}
