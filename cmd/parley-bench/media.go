package main

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/sdk/client"
)

// Synthetic payload layout, the same for Opus and VP8:
//
//	[0]     VP8 payload descriptor (0x10: start of partition 0 on the first
//	        packet of a frame, 0x00 otherwise); 0 for Opus
//	[1]     VP8 payload header byte: bit 0 (P) clear on keyframes; 0 for Opus
//	[2:4]   magic "pb"
//	[4:8]   track index (the benchmark's own numbering of published tracks)
//	[8:12]  sequence number of the packet in the track, from 0
//	[12:20] send time: nanoseconds on the benchmark's monotonic clock
//	[20:]   filler
//
// The sender and the receivers are in one process, so the send time and the
// receive time are read from the same clock.
const (
	headerLen  = 20
	magic0     = 'p'
	magic1     = 'b'
	opusPPS    = 50   // Opus packets per second (20 ms frames)
	maxPayload = 1100 // VP8 frames are split into packets of at most this payload
)

// clock is the benchmark's monotonic clock.
type clock struct{ start time.Time }

// now returns nanoseconds since the benchmark started.
func (c clock) now() int64 { return int64(time.Since(c.start)) }

// stamp is what a receiver reads from a payload.
type stamp struct {
	track  uint32
	seq    uint32
	sentNS int64
}

// writeStamp fills the benchmark header of payload (len >= headerLen).
func writeStamp(payload []byte, s stamp) {
	payload[2], payload[3] = magic0, magic1
	binary.BigEndian.PutUint32(payload[4:], s.track)
	binary.BigEndian.PutUint32(payload[8:], s.seq)
	binary.BigEndian.PutUint64(payload[12:], uint64(s.sentNS))
}

// readStamp parses the benchmark header of payload.
func readStamp(payload []byte) (stamp, bool) {
	if len(payload) < headerLen || payload[2] != magic0 || payload[3] != magic1 {
		return stamp{}, false
	}
	return stamp{
		track:  binary.BigEndian.Uint32(payload[4:]),
		seq:    binary.BigEndian.Uint32(payload[8:]),
		sentNS: int64(binary.BigEndian.Uint64(payload[12:])),
	}, true
}

// pubTrack is one synthetic track a publisher sends.
type pubTrack struct {
	index   uint32
	video   bool
	local   *client.LocalTrack
	clk     clock
	bitrate int
	fps     int
	kfIvl   time.Duration

	next       atomic.Uint32 // sequence number of the next packet
	sent       atomic.Uint64 // packets written
	sendErrors atomic.Uint64
	wantKey    atomic.Bool
	startSeq   uint32 // first sequence number of the measured window
	endSeq     uint32 // first sequence number after it
	rtpSeq     uint16
	buf        []byte
}

// newPubTrack returns the sender of one published track.
func newPubTrack(index uint32, lt *client.LocalTrack, cfg *config, clk clock) *pubTrack {
	t := &pubTrack{index: index, local: lt, clk: clk, buf: make([]byte, maxPayload)}
	t.video = lt.Kind() == webrtc.RTPCodecTypeVideo
	if t.video {
		t.bitrate, t.fps, t.kfIvl = cfg.VideoBitrate, cfg.VideoFPS, cfg.KeyframeIvl
		t.wantKey.Store(true)
		lt.OnKeyframeRequest(func() { t.wantKey.Store(true) })
	} else {
		t.bitrate, t.fps = cfg.AudioBitrate, opusPPS
	}
	return t
}

// frameBytes returns the payload bytes of one frame.
func (t *pubTrack) frameBytes() int {
	return max(t.bitrate/8/t.fps, headerLen)
}

// run sends frames at the track's rate until ctx ends.
func (t *pubTrack) run(ctx context.Context) {
	ivl := time.Second / time.Duration(t.fps)
	tick := time.NewTicker(ivl)
	defer tick.Stop()
	lastKey := time.Now()
	rtpTS := uint32(0)
	step := uint32(48000 / t.fps)
	if t.video {
		step = uint32(90000 / t.fps)
	}
	for {
		key := false
		if t.video && (t.wantKey.Swap(false) || time.Since(lastKey) >= t.kfIvl) {
			key, lastKey = true, time.Now()
		}
		t.sendFrame(rtpTS, key)
		rtpTS += step
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sendFrame sends one frame as one (Opus) or more (VP8) packets.
func (t *pubTrack) sendFrame(rtpTS uint32, key bool) {
	left := t.frameBytes()
	first := true
	for left > 0 {
		n := nextPacketSize(left)
		left -= n
		p := t.buf[:n]
		p[0], p[1] = 0, 0
		if t.video {
			if first {
				p[0] = 0x10
			}
			if !key {
				p[1] = 1
			}
		}
		first = false
		seq := t.next.Add(1) - 1
		writeStamp(p, stamp{track: t.index, seq: seq, sentNS: t.clk.now()})
		t.rtpSeq++
		err := t.local.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: t.rtpSeq, Timestamp: rtpTS, Marker: left == 0},
			Payload: p,
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.sendErrors.Add(1)
		}
		t.sent.Add(1)
	}
}

// nextPacketSize returns the payload size of the next packet of a frame with
// left bytes still to send: at most maxPayload, and never leaving a last
// packet too small for the benchmark header.
func nextPacketSize(left int) int {
	n := min(left, maxPayload)
	if rest := left - n; rest > 0 && rest < headerLen {
		n = left - headerLen
	}
	return n
}
