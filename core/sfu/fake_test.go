package sfu

import (
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fakeContext is a webrtc.TrackLocalContext for binding down tracks without
// a peer connection.
type fakeContext struct {
	codecs []webrtc.RTPCodecParameters
	ssrc   webrtc.SSRC
	writer webrtc.TrackLocalWriter
}

func (c *fakeContext) CodecParameters() []webrtc.RTPCodecParameters { return c.codecs }
func (c *fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter {
	return nil
}
func (c *fakeContext) SSRC() webrtc.SSRC                       { return c.ssrc }
func (c *fakeContext) SSRCRetransmission() webrtc.SSRC         { return 0 }
func (c *fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC { return 0 }
func (c *fakeContext) WriteStream() webrtc.TrackLocalWriter    { return c.writer }
func (c *fakeContext) ID() string                              { return "fake" }
func (c *fakeContext) RTCPReader() interceptor.RTCPReader      { return nil }

// noopWriter discards packets: the benchmark measures only the fan-out.
type noopWriter struct{}

func (noopWriter) WriteRTP(_ *rtp.Header, payload []byte) (int, error) { return len(payload), nil }
func (noopWriter) Write(b []byte) (int, error)                         { return len(b), nil }

// recordWriter keeps copies of the packets written to it.
type recordWriter struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (w *recordWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := rtp.Packet{Header: h.Clone(), Payload: append([]byte(nil), payload...)}
	w.pkts = append(w.pkts, p)
	return len(payload), nil
}

func (w *recordWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *recordWriter) take() []rtp.Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pkts
	w.pkts = nil
	return p
}

// testForwarder returns a VP8 forwarder without a publisher.
func testForwarder(cache int) *Forwarder {
	return newForwarder(forwarderParams{
		id: "TR_test", clientTrackID: "cam", streamID: "stream", kind: webrtc.RTPCodecTypeVideo,
		codec: webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			PayloadType:        96,
		},
		cacheSize: cache, throttle: DefaultKeyframeThrottle,
	})
}

// bindFake attaches a down track of f bound to w with the given SSRC.
func bindFake(f *Forwarder, w webrtc.TrackLocalWriter, ssrc webrtc.SSRC) *downTrack {
	d := newDownTrack(f, nil, "PA_owner")
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/vp8"}, PayloadType: 120},
	}
	if _, err := d.Bind(&fakeContext{codecs: codecs, ssrc: ssrc, writer: w}); err != nil {
		panic(err)
	}
	f.addDownTrack(d)
	return d
}

// rtpBytes marshals a packet with the given sequence number and payload.
func rtpBytes(seq uint16, payload []byte) []byte {
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 0xabcdef},
		Payload: payload,
	}
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}
