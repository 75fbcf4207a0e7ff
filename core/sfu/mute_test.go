package sfu

import "testing"

// A muted forwarder writes nothing to its down tracks; after the unmute
// they continue their sequence numbers without a gap, video from the next
// keyframe (which the unmute requests), and a muted forward does not
// allocate either.
func TestForwarderMute(t *testing.T) {
	f := testForwarder(256)
	w := &recordWriter{}
	bindFake(f, w, 1111)
	delta, key := []byte{0x10, 0x01, 0xaa}, []byte{0x10, 0x00, 0xbb}
	send := func(from, to uint16, payload []byte) {
		for s := from; s != to; s++ {
			f.forward(rtpBytes(s, payload))
		}
	}
	send(1, 5, delta)
	f.SetMuted(true)
	if !f.Muted() {
		t.Fatal("Muted() false after SetMuted(true)")
	}
	send(5, 20, delta)
	if got := len(w.take()); got != 4 {
		t.Fatalf("%d packets written, want the 4 sent before the mute", got)
	}
	f.SetMuted(false)
	select {
	case <-f.kfReq:
	default:
		t.Fatal("unmute did not request a keyframe")
	}
	send(20, 23, delta) // dropped: waiting for a keyframe
	send(23, 24, key)
	send(24, 26, delta)
	got := w.take()
	if len(got) != 3 || got[0].Payload[2] != 0xbb {
		t.Fatalf("after the unmute: %d packets, first payload %x; want 3 from the keyframe", len(got), got[0].Payload)
	}
	for i, p := range got {
		if want := uint16(5 + i); p.SequenceNumber != want {
			t.Fatalf("packet %d after the unmute has seq %d, want %d (no gap)", i, p.SequenceNumber, want)
		}
	}
	if st := f.Stats(); st.Packets != 25 {
		t.Fatalf("muted packets not counted as received: %+v", st)
	}

	if raceEnabled {
		return
	}
	f.SetMuted(true)
	pkt := rtpBytes(1, make([]byte, 1000))
	seq := uint16(100)
	allocs := testing.AllocsPerRun(200, func() {
		seq++
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		buf := f.cache.spareBuf()
		f.forward(buf[:copy(buf, pkt)])
	})
	if allocs != 0 {
		t.Fatalf("muted forward allocates %.1f times per packet", allocs)
	}
}
