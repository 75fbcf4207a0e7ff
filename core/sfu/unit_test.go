package sfu

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	d := DefaultConfig()
	if d.MediaPort != 7072 || d.PacketCache != 1024 || d.KeyframeThrottle != 500*time.Millisecond ||
		d.ICEDisconnectedTimeout != 2*time.Second || d.ICEFailedTimeout != 3*time.Second || d.ICEKeepalive != time.Second {
		t.Errorf("defaults %+v", d)
	}
	bad := []func(*Config){
		func(c *Config) { c.MediaPort = -1 },
		func(c *Config) { c.MediaPort = 65536 },
		func(c *Config) { c.PacketCache = 1000 },
		func(c *Config) { c.PacketCache = 32 },
		func(c *Config) { c.PacketCache = 131072 },
		func(c *Config) { c.KeyframeThrottle = 0 },
		func(c *Config) { c.ICEDisconnectedTimeout = -time.Second },
		func(c *Config) { c.ICEFailedTimeout = 0 },
		func(c *Config) { c.ICEKeepalive = 0 },
		func(c *Config) { c.PublicIPs = []string{"1.2.3.4", "nope"} },
		func(c *Config) { c.ListenIP = "localhost" },
	}
	for i, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("case %d: Validate = %v, want ErrInvalidConfig", i, err)
		}
	}
	good := DefaultConfig()
	good.MediaPort, good.PacketCache, good.PublicIPs, good.ListenIP = 0, 64, []string{"203.0.113.7", "2001:db8::1"}, "127.0.0.1"
	if err := good.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if good.audioCacheSize() != 64 || DefaultConfig().audioCacheSize() != 256 {
		t.Errorf("audio cache sizes %d %d", good.audioCacheSize(), DefaultConfig().audioCacheSize())
	}
}

func TestKeyframeDetection(t *testing.T) {
	cases := []struct {
		name string
		kind codecKind
		p    []byte
		want bool
	}{
		{"vp8 key", codecVP8, []byte{0x10, 0x00, 0, 0}, true},
		{"vp8 delta", codecVP8, []byte{0x10, 0x01, 0, 0}, false},
		{"vp8 not start", codecVP8, []byte{0x00, 0x00}, false},
		{"vp8 partition 1", codecVP8, []byte{0x11, 0x00}, false},
		{"vp8 ext pictureid15 tl0 tid key", codecVP8, []byte{0x90, 0xe0, 0x81, 0x02, 0x05, 0x40, 0x9c}, true},
		{"vp8 ext pictureid7 delta", codecVP8, []byte{0x90, 0x80, 0x05, 0x01}, false},
		{"vp8 truncated", codecVP8, []byte{0x90, 0x80}, false},
		{"vp9 key", codecVP9, []byte{0x88}, true},
		{"vp9 inter", codecVP9, []byte{0xc8}, false},
		{"vp9 not begin", codecVP9, []byte{0x80}, false},
		{"h264 idr", codecH264, []byte{0x65, 0x88}, true},
		{"h264 sps", codecH264, []byte{0x67, 0x42}, true},
		{"h264 slice", codecH264, []byte{0x41, 0x9a}, false},
		{"h264 stap-a sps", codecH264, []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68}, true},
		{"h264 stap-a pps only", codecH264, []byte{0x78, 0x00, 0x01, 0x68}, false},
		{"h264 stap-a bad size", codecH264, []byte{0x78, 0x00, 0x09, 0x67}, false},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85, 0x00}, true},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05, 0x00}, false},
		{"opus", codecOther, []byte{0x00}, false},
		{"empty", codecVP8, nil, false},
	}
	for _, c := range cases {
		if got := isKeyframe(c.kind, c.p); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPacketCache(t *testing.T) {
	c := newPacketCache(64)
	buf := make([]byte, maxPacketSize)
	for seq := uint16(65500); seq != 100; seq++ { // wraps around
		spare := c.spareBuf()
		n := copy(spare, rtpBytes(seq, []byte{byte(seq)}))
		if got := c.push(seq, spare[:n]); len(got) != n {
			t.Fatalf("push returned %d bytes", len(got))
		}
	}
	for seq := uint16(100 - 64); seq != 100; seq++ {
		n := c.get(seq, buf)
		var h rtp.Header
		hn, err := h.Unmarshal(buf[:n])
		if n == 0 || err != nil || h.SequenceNumber != seq || buf[hn] != byte(seq) {
			t.Fatalf("seq %d: n=%d err=%v", seq, n, err)
		}
	}
	if n := c.get(100-65, buf); n != 0 {
		t.Errorf("evicted packet still cached")
	}
	c.push(20, rtpBytes(20, []byte{1})) // older than the cache span: ignored
	if n := c.get(20, buf); n != 0 {
		t.Errorf("too-old packet cached")
	}
	c.push(99, rtpBytes(99, []byte{7})) // duplicate, copied from outside
	if n := c.get(99, buf); n == 0 || buf[n-1] != 7 {
		t.Errorf("re-pushed packet not replaced")
	}
}

// TestDownTrackPauseResume drives the forward path directly: sequence
// numbers stay contiguous across a pause, resumption waits for a keyframe,
// and NACK mapping follows the offset.
func TestDownTrackPauseResume(t *testing.T) {
	f := testForwarder(256)
	wA, wB := &recordWriter{}, &recordWriter{}
	bindFake(f, wA, 1111)
	dB := bindFake(f, wB, 2222)
	delta, key := []byte{0x10, 0x01, 0xaa}, []byte{0x10, 0x00, 0xbb}
	send := func(from, to uint16, payload []byte) {
		for s := from; s != to; s++ {
			f.forward(rtpBytes(s, payload))
		}
	}
	send(65530, 4, delta) // wraps
	dB.state.Store(statePaused)
	send(4, 10, delta)
	dB.state.Store(stateResuming)
	send(10, 12, delta) // not a keyframe: still dropped
	send(12, 13, key)
	send(13, 15, delta)
	f.forward(rtpBytes(11, delta)) // late packet from the paused period

	a, b := wA.take(), wB.take()
	if len(a) != 22 {
		t.Fatalf("A got %d packets, want 22", len(a))
	}
	if len(b) != 13 {
		t.Fatalf("B got %d packets, want 13", len(b))
	}
	for i, p := range b {
		if want := uint16(65530) + uint16(i); p.SequenceNumber != want || p.SSRC != 2222 || p.PayloadType != 120 {
			t.Fatalf("B packet %d: seq %d ssrc %d pt %d, want seq %d", i, p.SequenceNumber, p.SSRC, p.PayloadType, want)
		}
	}
	if b[10].Payload[2] != 0xbb {
		t.Errorf("B resumed on a non-keyframe")
	}
	if b[9].Timestamp != uint32(uint16(3))*3000 || b[10].Timestamp != 12*3000 {
		t.Errorf("timestamps not kept: %d %d", b[9].Timestamp, b[10].Timestamp)
	}
	if got := f.Stats().PausedDrops; got != 8 {
		t.Errorf("PausedDrops = %d, want 8", got)
	}
	// B knows incoming 12 as 65530+10 = 4; packets before the resume
	// cannot be mapped.
	if in, ok := dB.incoming(4); !ok || in != 12 {
		t.Errorf("incoming(4) = %d %v, want 12", in, ok)
	}
	if _, ok := dB.incoming(3); ok {
		t.Errorf("incoming(3) mapped across the pause")
	}
	dB.rtxBuf = make([]byte, maxPacketSize)
	dB.resend(dB.bound.Load(), 5)
	if r := wB.take(); len(r) != 1 || r[0].SequenceNumber != 5 || r[0].Payload[2] != 0xaa || r[0].SSRC != 2222 {
		t.Errorf("resend: %+v", r)
	}
	if f.Stats().NacksServed != 1 {
		t.Errorf("NacksServed = %d", f.Stats().NacksServed)
	}
}

func TestForwardPadding(t *testing.T) {
	f := testForwarder(64)
	w := &recordWriter{}
	bindFake(f, w, 1)
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, Padding: true, PaddingSize: 4, PayloadType: 96, SequenceNumber: 1},
		Payload: []byte{1, 2, 3},
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f.forward(b)
	f.forward(b[:5]) // truncated: ignored
	got := w.take()
	if len(got) != 1 || string(got[0].Payload) != "\x01\x02\x03" || !got[0].Header.Padding || got[0].Header.PaddingSize != 4 {
		t.Fatalf("got %+v", got)
	}
}

func TestForwardDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	f := testForwarder(1024)
	for i := 0; i < 10; i++ {
		bindFake(f, noopWriter{}, 1000+webrtcSSRC(i))
	}
	pkt := rtpBytes(1, make([]byte, 1000))
	seq := uint16(1)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		buf := f.cache.spareBuf()
		f.forward(buf[:copy(buf, pkt)])
	})
	if allocs != 0 {
		t.Fatalf("forward allocates %.1f times per packet", allocs)
	}
}

func TestMatchCodec(t *testing.T) {
	h264 := func(fmtp string, pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, SDPFmtpLine: fmtp}, PayloadType: pt,
		}
	}
	negotiated := []webrtc.RTPCodecParameters{h264(h264Baseline, 102), h264(h264Constr, 125)}
	if c, ok := matchCodec(h264(h264Constr, 99), negotiated); !ok || c.PayloadType != 125 {
		t.Errorf("H.264 42e01f matched PT %d %v", c.PayloadType, ok)
	}
	if c, ok := matchCodec(h264("packetization-mode=1;profile-level-id=640c1f", 99), negotiated); !ok || c.PayloadType != 102 {
		t.Errorf("H.264 fallback matched PT %d %v", c.PayloadType, ok)
	}
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}}
	if _, ok := matchCodec(vp8, negotiated); ok {
		t.Error("VP8 matched an H.264-only negotiation")
	}
}

func TestBindWithoutMatchingCodec(t *testing.T) {
	f := testForwarder(64)
	w := &recordWriter{}
	d := newDownTrack(f, nil, "PA_owner")
	h264 := []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, PayloadType: 102}}
	if c, err := d.Bind(&fakeContext{codecs: h264, ssrc: 5, writer: w}); err != nil || c.PayloadType != 102 {
		t.Fatalf("Bind = %v, %v", c, err)
	}
	f.addDownTrack(d)
	f.forward(rtpBytes(1, []byte{0x10, 0x00}))
	if got := w.take(); len(got) != 0 {
		t.Errorf("forwarded %d packets with a codec the subscriber lacks", len(got))
	}
	if _, err := newDownTrack(f, nil, "x").Bind(&fakeContext{}); !errors.Is(err, ErrCodecNotNegotiated) {
		t.Errorf("Bind without codecs: %v", err)
	}
	if err := d.Unbind(nil); err != nil || d.bound.Load() != nil {
		t.Errorf("Unbind: %v", err)
	}
}

func TestREMBStateMachine(t *testing.T) {
	f := testForwarder(64)
	d := bindFake(f, noopWriter{}, 1)
	f.bitrate.Store(1_000_000)
	f.lastPacket.Store(int64(time.Since(f.epoch)))
	steps := []struct {
		remb uint64
		want int32
	}{
		{2_000_000, stateActive},
		{750_000, stateActive}, // within the margin
		{100_000, statePaused},
		{800_000, statePaused}, // not recovered enough
		{900_000, stateResuming},
		{100_000, statePaused},
	}
	for i, s := range steps {
		d.handleREMB(s.remb)
		if got := d.state.Load(); got != s.want {
			t.Fatalf("step %d (remb %d): state %d, want %d", i, s.remb, got, s.want)
		}
	}
	d.pausedAt.Store(time.Now().Add(-pauseProbeAfter - time.Second).UnixNano())
	if d.handleREMB(100_000); d.state.Load() != stateResuming {
		t.Errorf("long pause did not probe")
	}

	audio := newForwarder(forwarderParams{id: "TR_a", kind: webrtc.RTPCodecTypeAudio, cacheSize: 64, throttle: time.Second})
	audio.bitrate.Store(1_000_000)
	audio.lastPacket.Store(int64(time.Since(audio.epoch)))
	da := newDownTrack(audio, nil, "x")
	if da.handleREMB(1); da.state.Load() != stateActive {
		t.Errorf("audio paused")
	}
}

func TestKeyframeRequestsThrottled(t *testing.T) {
	var sent atomic.Int64
	f := newForwarder(forwarderParams{
		id: "TR_k", kind: webrtc.RTPCodecTypeVideo, cacheSize: 64, throttle: 200 * time.Millisecond,
		sendPLI: func() error { sent.Add(1); return nil },
	})
	done := make(chan struct{})
	go func() { defer close(done); f.keyframeLoop() }()
	defer func() { f.stop(); <-done }()
	start := time.Now()
	for i := 0; i < 100; i++ { // many subscribers at once: one PLI
		f.RequestKeyframe()
	}
	waitFor(t, time.Second, "first PLI", func() bool { return sent.Load() == 1 })
	for i := 0; i < 20; i++ { // within the throttle: merged into one deferred PLI
		f.RequestKeyframe()
		time.Sleep(time.Millisecond)
	}
	waitFor(t, time.Second, "deferred PLI", func() bool { return sent.Load() == 2 })
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("second PLI after %s, before the throttle interval", el)
	}
	time.Sleep(50 * time.Millisecond)
	if n := sent.Load(); n != 2 || f.Stats().KeyframeRequests != 2 {
		t.Errorf("sent %d PLIs (stats %d), want 2", n, f.Stats().KeyframeRequests)
	}
}
