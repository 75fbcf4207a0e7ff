package sfu

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Pause states of a video down track.
const (
	stateActive   int32 = iota // forwarding
	statePaused                // subscriber congested: dropping
	stateResuming              // estimate recovered: waiting for a keyframe
)

// REMB thresholds, as fractions of the incoming video bitrate the subscriber
// receives: below pauseBelow the subscriber's video is paused; at or above
// resumeAbove it resumes at the next keyframe.
const (
	pauseBelowNum, pauseBelowDen   = 7, 10
	resumeAboveNum, resumeAboveDen = 85, 100
)

// pauseProbeAfter is how long a video down track stays paused without a
// recovering estimate before it tries again: a receiver that gets no video
// may never raise its estimate on its own.
const pauseProbeAfter = 10 * time.Second

// keepEpochFor is how many packets after a sequence-number resync late
// packets from before it are still recognised and dropped.
const keepEpochFor = 1000

// binding is what a down track captures when pion binds it to an RTPSender.
type binding struct {
	ssrc   uint32
	pt     uint8
	writer webrtc.TrackLocalWriter // nil: no usable codec was negotiated
}

// downTrack is one subscriber's copy of a forwarded track: a
// webrtc.TrackLocal that rewrites SSRC, payload type and sequence numbers.
type downTrack struct {
	f        *Forwarder
	sub      *Subscriber // nil in benchmarks
	streamID string
	sender   *webrtc.RTPSender

	bound    atomic.Pointer[binding]
	state    atomic.Int32
	pausedAt atomic.Int64 // unix nanos of the last pause
	// mapping publishes the sequence mapping to the RTCP goroutine:
	// bit 32 set when valid, bit 33 while the epoch is fresh, bits 16..31
	// the offset (out = in - offset), bits 0..15 the first outgoing
	// sequence number of the current epoch.
	mapping atomic.Uint64

	// Forwarding state, owned by the forwarder's read goroutine.
	hdr        rtp.Header
	resync     bool // next packet starts a new epoch
	sentAny    bool
	lastOut    uint16
	offset     uint16
	epochIn    uint16 // first incoming seq of the epoch
	epochFresh bool   // epochIn still recent enough to compare with

	// Retransmission state, owned by the RTCP goroutine.
	rtxBuf []byte
	rtxHdr rtp.Header
}

// newDownTrack returns an unbound down track of f for sub.
func newDownTrack(f *Forwarder, sub *Subscriber, streamID string) *downTrack {
	return &downTrack{f: f, sub: sub, streamID: streamID, resync: true}
}

// Bind implements webrtc.TrackLocal: it captures the SSRC, the payload type
// of the forwarder's codec among the negotiated ones, and the write stream.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	negotiated := ctx.CodecParameters()
	c, ok := matchCodec(d.f.codec, negotiated)
	b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), writer: ctx.WriteStream()}
	if !ok {
		if len(negotiated) == 0 {
			return webrtc.RTPCodecParameters{}, ErrCodecNotNegotiated
		}
		// Keep pion's negotiation going, but send nothing on this m-line.
		d.f.log.Warn("subscriber did not accept the track's codec",
			"track", d.f.id, "codec", d.f.codec.MimeType)
		c = negotiated[0]
		b.pt, b.writer = uint8(c.PayloadType), nil
	}
	d.bound.Store(b)
	d.f.RequestKeyframe()
	return c, nil
}

// Unbind implements webrtc.TrackLocal.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// ID implements webrtc.TrackLocal: the forwarder's track id.
func (d *downTrack) ID() string { return d.f.id }

// RID implements webrtc.TrackLocal; simulcast is not used.
func (d *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the publisher's participant id.
func (d *downTrack) StreamID() string { return d.streamID }

// Kind implements webrtc.TrackLocal.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.f.kind }

// writeRTP forwards one packet (header h, payload) to the subscriber. It
// runs on the forwarder's read goroutine, never blocks on the subscriber
// beyond pion's non-blocking UDP write, and does not allocate.
func (d *downTrack) writeRTP(h *rtp.Header, payload []byte, key bool) {
	b := d.bound.Load()
	if b == nil || b.writer == nil {
		return
	}
	if d.f.kind == webrtc.RTPCodecTypeVideo && !d.admit(key) {
		return
	}
	seq := h.SequenceNumber
	if d.resync {
		d.startEpoch(seq)
	} else if d.epochFresh {
		if diff := int16(seq - d.epochIn); diff < 0 {
			return // late packet from before the resync: its number is taken
		} else if diff > keepEpochFor {
			d.epochFresh = false
			d.mapping.Store(d.mapping.Load() &^ (1 << 33))
		}
	}
	out := seq - d.offset
	d.hdr = *h
	d.hdr.SSRC = b.ssrc
	d.hdr.PayloadType = b.pt
	d.hdr.SequenceNumber = out
	d.hdr.Extension = false
	d.hdr.Extensions = nil
	_, _ = b.writer.WriteRTP(&d.hdr, payload)
	if !d.sentAny || int16(out-d.lastOut) > 0 {
		d.lastOut = out
	}
	d.sentAny = true
}

// admit applies the pause state to a video packet and reports whether to
// send it. Dropping marks a resync so the subscriber sees no gap.
func (d *downTrack) admit(key bool) bool {
	switch d.state.Load() {
	case statePaused:
		d.resync = true
		d.f.pausedDrops.Add(1)
		return false
	case stateResuming:
		if !key {
			d.resync = true
			d.f.pausedDrops.Add(1)
			d.f.RequestKeyframe()
			return false
		}
		d.state.CompareAndSwap(stateResuming, stateActive)
	}
	return true
}

// startEpoch chooses the offset that makes seq follow the last sent
// sequence number, and publishes it for NACK mapping.
func (d *downTrack) startEpoch(seq uint16) {
	d.resync = false
	if d.sentAny {
		d.offset = seq - (d.lastOut + 1)
	}
	d.epochIn, d.epochFresh = seq, true
	d.mapping.Store(1<<32 | 1<<33 | uint64(d.offset)<<16 | uint64(seq-d.offset))
}

// incoming maps an outgoing sequence number back to the publisher's, false
// when it belongs to an earlier epoch (packets that cannot be resent).
func (d *downTrack) incoming(out uint16) (uint16, bool) {
	m := d.mapping.Load()
	if m&(1<<32) == 0 {
		return 0, false
	}
	offset, epochOut := uint16(m>>16), uint16(m)
	if m&(1<<33) != 0 && int16(out-epochOut) < 0 {
		return 0, false
	}
	return out + offset, true
}

// rtcpLoop reads RTCP the subscriber sends for this track until the sender
// stops.
func (d *downTrack) rtcpLoop() {
	buf := make([]byte, maxPacketSize)
	d.rtxBuf = make([]byte, maxPacketSize)
	for {
		n, _, err := d.sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			d.handleRTCP(p)
		}
	}
}

// handleRTCP reacts to one RTCP packet from the subscriber.
func (d *downTrack) handleRTCP(p rtcp.Packet) {
	b := d.bound.Load()
	if b == nil {
		return
	}
	switch p := p.(type) {
	case *rtcp.PictureLossIndication:
		if p.MediaSSRC == b.ssrc {
			d.f.RequestKeyframe()
		}
	case *rtcp.FullIntraRequest:
		for _, e := range p.FIR {
			if e.SSRC == b.ssrc {
				d.f.RequestKeyframe()
			}
		}
	case *rtcp.TransportLayerNack:
		if p.MediaSSRC == b.ssrc {
			d.handleNack(b, p)
		}
	case *rtcp.ReceiverEstimatedMaximumBitrate:
		d.handleREMB(uint64(p.Bitrate))
	}
}

// handleNack resends the requested packets from the forwarder's cache.
func (d *downTrack) handleNack(b *binding, n *rtcp.TransportLayerNack) {
	if b.writer == nil || d.state.Load() != stateActive {
		return
	}
	for i := range n.Nacks {
		n.Nacks[i].Range(func(out uint16) bool {
			d.resend(b, out)
			return true
		})
	}
}

// resend retransmits the packet the subscriber knows as out.
func (d *downTrack) resend(b *binding, out uint16) {
	in, ok := d.incoming(out)
	if !ok {
		return
	}
	size := d.f.cache.get(in, d.rtxBuf)
	if size == 0 {
		return
	}
	pkt := d.rtxBuf[:size]
	n, err := d.rtxHdr.Unmarshal(pkt)
	if err != nil {
		return
	}
	end := size
	d.rtxHdr.PaddingSize = 0
	if d.rtxHdr.Padding {
		pad := int(pkt[end-1])
		if end <= n || pad == 0 || end-pad < n {
			return
		}
		end -= pad
		d.rtxHdr.PaddingSize = byte(pad)
	}
	d.rtxHdr.SSRC = b.ssrc
	d.rtxHdr.PayloadType = b.pt
	d.rtxHdr.SequenceNumber = out
	d.rtxHdr.Extension = false
	d.rtxHdr.Extensions = nil
	if _, err := b.writer.WriteRTP(&d.rtxHdr, pkt[n:end]); err == nil {
		d.f.nacksServed.Add(1)
	}
}

// handleREMB records the subscriber's estimate and pauses or resumes video
// when it falls below or recovers to the incoming video bitrate.
func (d *downTrack) handleREMB(estimate uint64) {
	rate := d.f.Bitrate()
	if d.sub != nil {
		d.sub.estimate.Store(estimate)
		rate = d.sub.videoBitrate()
	}
	if d.f.kind != webrtc.RTPCodecTypeVideo || rate == 0 {
		return
	}
	low := estimate*pauseBelowDen < rate*pauseBelowNum
	high := estimate*resumeAboveDen >= rate*resumeAboveNum
	probe := time.Since(time.Unix(0, d.pausedAt.Load())) > pauseProbeAfter
	switch st := d.state.Load(); {
	case st == statePaused && (high || probe):
		if d.state.CompareAndSwap(statePaused, stateResuming) {
			d.f.log.Debug("resuming subscriber at next keyframe", "track", d.f.id, "remb", estimate, "rate", rate)
			d.f.RequestKeyframe()
		}
	case low && st != statePaused:
		if d.state.CompareAndSwap(st, statePaused) {
			d.pausedAt.Store(time.Now().UnixNano())
			d.f.log.Debug("pausing congested subscriber", "track", d.f.id, "remb", estimate, "rate", rate)
		}
	}
}
