package node_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/goleak"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/sdk/client"
)

// TestMediaThreeParticipants is the end-to-end media test: three clients in
// one room each publish Opus and VP8 RTP whose payloads carry a counter and a
// checksum; each must receive the other two's four tracks under the right
// identity, every payload intact and in order. Data messages must reach
// exactly their addressees, and a client whose signaling socket drops must
// resume while its media keeps flowing.
func TestMediaThreeParticipants(t *testing.T) {
	// Registered first, so it runs last: after the clients and the node are
	// gone, nothing they started may still run.
	running := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, running) })
	n := startMediaNode(t)
	names := []string{"alice", "bob", "carol"}
	ps := make([]*mediaPeer, len(names))
	for i, name := range names {
		ps[i] = joinMediaPeer(t, n, i, name)
	}
	for _, p := range ps {
		p.publish(t)
	}
	mediaEventually(t, 15*time.Second, "every client receiving the other two's four tracks", func() bool {
		for _, p := range ps {
			if !p.receivingFromAll(len(names), 10) {
				return false
			}
		}
		return true
	})
	for _, p := range ps {
		p.checkTracks(t, names)
	}

	checkDataRouting(t, ps)
	checkResume(t, ps)

	for _, p := range ps {
		p.stopSending()
	}
	mediaEventually(t, 10*time.Second, "every payload sent delivered", func() bool {
		for _, p := range ps {
			if !p.receivedAllSent(ps) {
				return false
			}
		}
		return true
	})
	for _, p := range ps {
		p.checkIntact(t, ps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range ps {
		if err := p.c.Leave(ctx); err != nil {
			t.Errorf("%s: leave: %v", p.name, err)
		}
		p.proxy.close()
		p.readers.Wait() // track reads end with the peer connections
	}
}

// TestMediaPublishControls covers the rest of the client's media surface
// against the real server: sample tracks, the Parley id of a published
// track, manual subscription, unsubscribe, unpublish, keyframe requests and
// the grants the server enforces.
func TestMediaPublishControls(t *testing.T) {
	running := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, running) })
	n := startMediaNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var mu sync.Mutex
	var published, unpublished []string
	remote := map[string]*client.RemoteTrack{}
	ended := map[string]bool{}
	var readers sync.WaitGroup
	alice := mediaClient(t, n, "controls", "alice", nil)
	bob := mediaClient(t, n, "controls", "bob", func(c *client.Client) {
		c.OnTrackPublished(func(ti client.TrackInfo) { mu.Lock(); published = append(published, ti.ID); mu.Unlock() })
		c.OnTrackUnpublished(func(ti client.TrackInfo) { mu.Lock(); unpublished = append(unpublished, ti.ID); mu.Unlock() })
		c.OnTrack(func(rt *client.RemoteTrack) {
			mu.Lock()
			remote[rt.ID()] = rt
			mu.Unlock()
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					if _, _, err := rt.ReadRTP(); err != nil {
						mu.Lock()
						ended[rt.ID()] = true
						mu.Unlock()
						return
					}
				}
			}()
		})
	}, client.WithAutoSubscribe(false))
	defer readers.Wait()
	has := func(list *[]string, id string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return slices.Contains(*list, id) }
	}

	audio, err := alice.PublishRTP(ctx, webrtc.MimeTypeOpus)
	if err != nil {
		t.Fatal(err)
	}
	video, err := alice.PublishSample(ctx, webrtc.MimeTypeVP8, client.WithTrackID("cam"))
	if err != nil {
		t.Fatal(err)
	}
	var keyframes atomic.Int32
	video.OnKeyframeRequest(func() { keyframes.Add(1) })
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Go(func() { writeSamples(video, stop) })
	writers.Go(func() { writeRTP(audio, stop) })
	defer func() { close(stop); writers.Wait() }()

	vinfo, err := video.WaitPublished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ainfo, err := audio.WaitPublished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(vinfo.ID, core.PrefixTrack) || vinfo.ClientTrackID != "cam" || vinfo.Identity != "alice" ||
		vinfo.Kind != core.KindVideo || vinfo.MimeType != webrtc.MimeTypeVP8 || video.ID() != vinfo.ID {
		t.Fatalf("video track reported as %+v", vinfo)
	}
	if n := len(alice.LocalParticipant().Tracks); n != 2 {
		t.Fatalf("alice's own participant lists %d tracks", n)
	}
	mediaEventually(t, 5*time.Second, "bob told of both tracks", func() bool {
		return has(&published, vinfo.ID)() && has(&published, ainfo.ID)()
	})

	// Without auto-subscribe nothing arrives until bob asks.
	if err := bob.Subscribe(ctx, "TR_nosuchtrack"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("subscribe to a missing track: %v", err)
	}
	if err := bob.Subscribe(ctx, vinfo.ID); err != nil {
		t.Fatal(err)
	}
	mediaEventually(t, 10*time.Second, "alice's video at bob, and a keyframe request", func() bool {
		mu.Lock()
		rt := remote[vinfo.ID]
		mu.Unlock()
		return rt != nil && keyframes.Load() > 0
	})
	mu.Lock()
	rt, count := remote[vinfo.ID], len(remote)
	mu.Unlock()
	if count != 1 || rt.Identity() != "alice" || rt.Kind() != core.KindVideo || rt.ParticipantID() != alice.LocalParticipant().ID {
		t.Fatalf("bob got %d tracks; video as %+v", count, rt.Info())
	}

	if err := bob.Unsubscribe(ctx, vinfo.ID); err != nil {
		t.Fatal(err)
	}
	mediaEventually(t, 10*time.Second, "bob's video read ending after unsubscribe", has2(&mu, ended, vinfo.ID))

	if err := alice.Unpublish(ctx, audio); err != nil {
		t.Fatal(err)
	}
	mediaEventually(t, 5*time.Second, "bob told the audio is gone", has(&unpublished, ainfo.ID))
	if ps := bob.Participants(); len(ps) != 1 || len(ps[0].Tracks) != 1 || ps[0].Tracks[0].ID != vinfo.ID {
		t.Fatalf("bob's view of the room: %+v", ps)
	}
	if err := alice.Unpublish(ctx, audio); !errors.Is(err, client.ErrUnknownTrack) {
		t.Fatalf("second unpublish: %v", err)
	}

	// A viewer token may subscribe only.
	tok, err := n.MintTokenWith(core.Claims{Identity: "viewer", Room: "controls", Grants: core.Grants{CanSubscribe: true}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := client.Dial(ctx, n.SignalURL(), tok, client.WithLoopback(), client.WithLogger(mediaLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	if _, err := viewer.PublishRTP(ctx, webrtc.MimeTypeOpus); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("viewer publish: %v", err)
	}
	if err := viewer.SendData(ctx, "", "hi"); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("viewer data: %v", err)
	}
	for _, c := range []*client.Client{viewer, bob, alice} {
		if err := c.Leave(ctx); err != nil {
			t.Errorf("leave: %v", err)
		}
	}
}

func has2(mu *sync.Mutex, m map[string]bool, key string) func() bool {
	return func() bool { mu.Lock(); defer mu.Unlock(); return m[key] }
}

// writeSamples writes a fake VP8 keyframe every 33 ms until stop closes.
func writeSamples(lt *client.LocalTrack, stop <-chan struct{}) {
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	frame := make([]byte, 1500) // two packets per frame; byte 0 bit 0 = 0: keyframe
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		_ = lt.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond})
	}
}

// writeRTP writes a 20 ms audio packet every 20 ms until stop closes.
func writeRTP(lt *client.LocalTrack, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		_ = lt.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xfc, 1, 2, 3}})
	}
}

// mediaClient connects identity to room with loopback media; setup, if not
// nil, registers callbacks first.
func mediaClient(t *testing.T, n *node.Node, room, identity string, setup func(*client.Client), opts ...client.Option) *client.Client {
	t.Helper()
	tok, err := n.MintToken(room, identity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]client.Option{client.WithLoopback(), client.WithLogger(mediaLogger())}, opts...)
	c, err := client.New(n.SignalURL(), tok, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("%s: connect: %v", identity, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDataPayloadIsJSONOnTheWire checks a data event carries the payload as
// the JSON value sent (docs/protocol.md: "payload": any), as a browser
// client reading the raw event sees it.
func TestDataPayloadIsJSONOnTheWire(t *testing.T) {
	n := startMediaNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := n.MintToken("wire", "raw", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, n.SignalURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	join, _ := protocol.Request("1", protocol.TypeJoin, protocol.JoinRequest{Token: tok})
	if err := ws.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	sender := mediaClient(t, n, "wire", "sender", nil)
	mediaEventually(t, 5*time.Second, "raw participant in the room", func() bool { return len(sender.Participants()) == 1 })
	if err := sender.SendData(ctx, "", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("no data event: %v", err)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Payload json.RawMessage `json:"payload"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != protocol.TypeData {
			continue
		}
		if string(ev.Data.Payload) != `{"x":1}` {
			t.Fatalf("data event payload on the wire is %s, want the JSON value {\"x\":1}", ev.Data.Payload)
		}
		return
	}
}

// checkDataRouting sends a message to the room and one to a participant,
// then a barrier to the room, and checks each client got exactly its share.
func checkDataRouting(t *testing.T, ps []*mediaPeer) {
	t.Helper()
	alice, bob, carol := ps[0], ps[1], ps[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alice.c.SendData(ctx, "", map[string]string{"msg": "hello room"}); err != nil {
		t.Fatalf("alice: send to room: %v", err)
	}
	if err := bob.c.SendData(ctx, carol.id(), map[string]string{"msg": "psst carol"}); err != nil {
		t.Fatalf("bob: send to carol: %v", err)
	}
	// Events reach each client in order, so once the barrier is in, anything
	// sent to a client before it is in too.
	if err := carol.c.SendData(ctx, "", map[string]string{"msg": "barrier"}); err != nil {
		t.Fatalf("carol: send to room: %v", err)
	}
	want := map[*mediaPeer][]string{
		alice: {"carol->room barrier"},
		bob:   {"alice->room hello room", "carol->room barrier"},
		carol: {"alice->room hello room", "bob->" + carol.id() + " psst carol"},
	}
	barrierFor := map[*mediaPeer]int{alice: 1, bob: 2, carol: 2}
	mediaEventually(t, 5*time.Second, "data messages delivered", func() bool {
		for p, n := range barrierFor {
			if len(p.dataLog()) < n {
				return false
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond) // a stray extra message would show here
	for p, w := range want {
		if got := p.dataLog(); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s received data %q, want %q", p.name, got, w)
		}
	}
}

// checkResume cuts alice's signaling connection and keeps her from
// reconnecting for a while: media must keep flowing both ways meanwhile (the
// peer connections do not depend on the socket), and once the network is
// back she must resume the same session within the grace period, the others
// seeing no departure.
func checkResume(t *testing.T, ps []*mediaPeer) {
	t.Helper()
	alice := ps[0]
	before, id := alice.reconnects.Load(), alice.id()
	alice.proxy.cut()
	mediaEventually(t, 5*time.Second, "alice noticing the drop", func() bool {
		return alice.c.State() == client.StateReconnecting
	})
	marks := make([]map[string]uint32, len(ps))
	for i, p := range ps {
		marks[i] = p.lastCounters()
	}
	mediaEventually(t, 10*time.Second, "media flowing while alice's signaling is down", func() bool {
		for i, p := range ps {
			if !p.advancedSince(marks[i], 20) {
				return false
			}
		}
		return true
	})
	if st := alice.c.State(); st != client.StateReconnecting {
		t.Fatalf("alice in state %v while her network is down", st)
	}
	alice.proxy.restore()
	mediaEventually(t, 10*time.Second, "alice resuming", func() bool {
		return alice.reconnects.Load() > before && alice.c.State() == client.StateConnected
	})
	if err := alice.c.Err(); err != nil || alice.id() != id {
		t.Fatalf("alice after resume: participant %s (was %s), err %v", alice.id(), id, err)
	}
	for i, p := range ps {
		marks[i] = p.lastCounters()
	}
	mediaEventually(t, 10*time.Second, "media flowing after the resume", func() bool {
		for i, p := range ps {
			if !p.advancedSince(marks[i], 20) {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alice.c.SendData(ctx, ps[1].id(), "after resume"); err != nil {
		t.Fatalf("alice: request after resume: %v", err)
	}
	for _, p := range ps {
		if n := p.trackCount(); n != 4 {
			t.Errorf("%s has %d remote tracks after the resume, want 4", p.name, n)
		}
		if left := p.leftLog(); len(left) > 0 {
			t.Errorf("%s saw participants leave: %q", p.name, left)
		}
	}
}

// Payload layout of the synthetic media: a VP8 payload descriptor and
// keyframe header (so the SFU sees plausible VP8), the publisher's index,
// the kind, a counter, filler derived from the counter, and a CRC-32 of all
// that.
const (
	offIndex   = 2
	offKind    = 3
	offCounter = 4
	headerLen  = 8
)

func makePayload(index, kind int, counter uint32) []byte {
	size := 120
	if kind == 1 {
		size = 600 + int(counter%400)
	}
	b := make([]byte, size)
	b[0], b[1] = 0x10, 0x00 // VP8: start of partition 0; P bit 0 (keyframe)
	b[offIndex], b[offKind] = byte(index), byte(kind)
	binary.BigEndian.PutUint32(b[offCounter:], counter)
	for i := headerLen; i < size-4; i++ {
		b[i] = byte(uint32(i)*31 + counter*7)
	}
	binary.BigEndian.PutUint32(b[size-4:], crc32.ChecksumIEEE(b[:size-4]))
	return b
}

// parsePayload returns the publisher index, kind and counter of an intact
// payload.
func parsePayload(b []byte) (index, kind int, counter uint32, err error) {
	if len(b) < headerLen+4 {
		return 0, 0, 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return 0, 0, 0, errors.New("checksum mismatch")
	}
	return int(b[offIndex]), int(b[offKind]), binary.BigEndian.Uint32(b[offCounter:]), nil
}

// mediaPeer is one participant of the test: its client, its sending tracks
// and what it received.
type mediaPeer struct {
	name    string
	index   int
	c       *client.Client
	proxy   *dropProxy
	sending sync.WaitGroup
	stop    chan struct{}
	readers sync.WaitGroup

	reconnects atomic.Int32
	sent       [2]atomic.Uint32 // next counter per kind: counters below were sent

	mu     sync.Mutex
	recv   map[string]*mediaRecv // by Parley track id
	data   []string
	left   []string
	errors []string
}

// mediaRecv is one remote track as received.
type mediaRecv struct {
	identity, mime string
	kind           core.TrackKind
	index, kindIdx int // from the payloads
	first, last    uint32
	count          int
	bad            []string
}

func joinMediaPeer(t *testing.T, n *node.Node, index int, name string) *mediaPeer {
	t.Helper()
	p := &mediaPeer{name: name, index: index, stop: make(chan struct{}), recv: make(map[string]*mediaRecv)}
	p.proxy = newDropProxy(t, n.SignalURL())
	tok, err := n.MintToken("media", name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(p.proxy.url, tok, client.WithLoopback(), client.WithLogger(mediaLogger()))
	if err != nil {
		t.Fatal(err)
	}
	c.OnTrack(p.onTrack)
	c.OnReconnect(func() { p.reconnects.Add(1) })
	c.OnParticipantLeft(func(l client.ParticipantLeft) {
		p.mu.Lock()
		p.left = append(p.left, l.Identity+" ("+l.Reason+")")
		p.mu.Unlock()
	})
	c.OnData(func(m client.DataMessage) {
		var v any
		if err := m.Decode(&v); err != nil {
			v = err
		}
		to := m.To
		if to == "" {
			to = "room"
		}
		if s, ok := v.(map[string]any); ok {
			v = s["msg"]
		}
		p.mu.Lock()
		p.data = append(p.data, fmt.Sprintf("%s->%s %v", m.FromIdentity, to, v))
		p.mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("%s: connect: %v", name, err)
	}
	p.c = c
	t.Cleanup(func() {
		p.stopSending()
		c.Close()
		p.proxy.close()
		p.readers.Wait()
	})
	return p
}

func (p *mediaPeer) id() string { return p.c.LocalParticipant().ID }

// publish publishes Opus and VP8 and starts sending on both.
func (p *mediaPeer) publish(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for kind, mime := range []string{webrtc.MimeTypeOpus, webrtc.MimeTypeVP8} {
		lt, err := p.c.PublishRTP(ctx, mime)
		if err != nil {
			t.Fatalf("%s: publish %s: %v", p.name, mime, err)
		}
		p.sending.Add(1)
		go p.send(lt, kind)
	}
}

// send writes one packet every 20 ms (audio) or 10 ms (video) until stopped.
func (p *mediaPeer) send(lt *client.LocalTrack, kind int) {
	defer p.sending.Done()
	interval, step := 20*time.Millisecond, uint32(960)
	if kind == 1 {
		interval, step = 10*time.Millisecond, 900
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for counter := uint32(0); ; counter++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		pkt := &rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: uint16(counter), Timestamp: counter * step, Marker: true},
			Payload: makePayload(p.index, kind, counter),
		}
		if err := lt.WriteRTP(pkt); err != nil {
			p.fail("%s: write %d: %v", lt.ClientTrackID(), counter, err)
		}
		p.sent[kind].Store(counter + 1)
	}
}

func (p *mediaPeer) stopSending() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.sending.Wait()
}

func (p *mediaPeer) fail(format string, args ...any) {
	p.mu.Lock()
	p.errors = append(p.errors, fmt.Sprintf(format, args...))
	p.mu.Unlock()
}

func (p *mediaPeer) onTrack(rt *client.RemoteTrack) {
	r := &mediaRecv{identity: rt.Identity(), mime: rt.Info().MimeType, kind: rt.Kind(), index: -1}
	p.mu.Lock()
	if _, dup := p.recv[rt.ID()]; dup {
		p.errors = append(p.errors, "track "+rt.ID()+" arrived twice")
	}
	p.recv[rt.ID()] = r
	p.mu.Unlock()
	p.readers.Add(1)
	go func() {
		defer p.readers.Done()
		for {
			pkt, _, err := rt.ReadRTP()
			if err != nil {
				return
			}
			p.receive(r, pkt.Payload)
		}
	}()
}

// receive checks one payload: intact, from the same publisher and kind as
// the track's first, and exactly the next counter.
func (p *mediaPeer) receive(r *mediaRecv, payload []byte) {
	index, kind, counter, err := parsePayload(payload)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil:
		r.bad = append(r.bad, err.Error())
	case r.count == 0:
		r.index, r.kindIdx, r.first, r.last = index, kind, counter, counter
		r.count = 1
	case index != r.index || kind != r.kindIdx:
		r.bad = append(r.bad, fmt.Sprintf("payload of publisher %d kind %d on track of %d/%d", index, kind, r.index, r.kindIdx))
	case counter != r.last+1:
		r.bad = append(r.bad, fmt.Sprintf("counter %d after %d", counter, r.last))
		r.last = max(r.last, counter)
	default:
		r.last = counter
		r.count++
	}
}

// receivingFromAll reports whether 2 tracks of each other participant
// delivered at least min payloads.
func (p *mediaPeer) receivingFromAll(participants, min int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.recv {
		if r.count >= min {
			n++
		}
	}
	return n == 2*(participants-1)
}

func (p *mediaPeer) trackCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.recv)
}

// checkTracks checks the remote tracks' identities, kinds and codecs against
// what their payloads say about their publisher.
func (p *mediaPeer) checkTracks(t *testing.T, names []string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]bool{}
	for id, r := range p.recv {
		wantKind, wantMime := core.KindAudio, webrtc.MimeTypeOpus
		if r.kindIdx == 1 {
			wantKind, wantMime = core.KindVideo, webrtc.MimeTypeVP8
		}
		if r.index < 0 || r.index >= len(names) || r.index == p.index {
			t.Errorf("%s: track %s carries payloads of publisher %d", p.name, id, r.index)
			continue
		}
		if r.identity != names[r.index] || r.kind != wantKind || r.mime != wantMime {
			t.Errorf("%s: track %s reported as %s %s %s; its payloads are %s's %s %s",
				p.name, id, r.identity, r.kind, r.mime, names[r.index], wantKind, wantMime)
		}
		seen[fmt.Sprint(r.index, r.kindIdx)] = true
	}
	if len(seen) != 4 {
		t.Errorf("%s: receives %d distinct publisher tracks, want 4", p.name, len(seen))
	}
}

func (p *mediaPeer) lastCounters() map[string]uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]uint32, len(p.recv))
	for id, r := range p.recv {
		m[id] = r.last
	}
	return m
}

// advancedSince reports whether every track marked got at least n more
// payloads.
func (p *mediaPeer) advancedSince(mark map[string]uint32, n uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, last := range mark {
		if r := p.recv[id]; r == nil || r.last < last+n {
			return false
		}
	}
	return true
}

// receivedAllSent reports whether every track got its publisher's last
// payload.
func (p *mediaPeer) receivedAllSent(ps []*mediaPeer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.recv {
		if r.index < 0 || r.index >= len(ps) {
			return false
		}
		if sent := ps[r.index].sent[r.kindIdx].Load(); sent == 0 || r.last < sent-1 {
			return false
		}
	}
	return true
}

// checkIntact checks each track delivered every payload from its first to
// its publisher's last, in order, with no corrupt one.
func (p *mediaPeer) checkIntact(t *testing.T, ps []*mediaPeer) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errors {
		t.Errorf("%s: %s", p.name, e)
	}
	for id, r := range p.recv {
		sent := ps[r.index].sent[r.kindIdx].Load()
		if len(r.bad) > 0 {
			t.Errorf("%s: track %s (%s %s): %d bad payloads, first: %s", p.name, id, r.identity, r.kind, len(r.bad), r.bad[0])
		}
		if want := int(sent - r.first); r.count != want {
			t.Errorf("%s: track %s (%s %s): received %d payloads of %d sent since its first (%d..%d)",
				p.name, id, r.identity, r.kind, r.count, want, r.first, sent-1)
		}
		t.Logf("%s <- %s %s: %d payloads (%d..%d of %d sent), all intact and in order",
			p.name, r.identity, r.kind, r.count, r.first, r.last, sent)
	}
}

func (p *mediaPeer) leftLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.left...)
}

func (p *mediaPeer) dataLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.data...)
}

// dropProxy relays TCP to the node's HTTP port, so a test can cut a
// client's signaling connection without touching its media.
type dropProxy struct {
	t      testing.TB
	ln     net.Listener
	target string
	url    string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	refuse bool // network down: connections are cut as they come
}

func newDropProxy(t testing.TB, signalURL string) *dropProxy {
	t.Helper()
	u, err := url.Parse(signalURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{t: t, ln: ln, target: u.Host, conns: make(map[net.Conn]bool)}
	u.Host = ln.Addr().String()
	p.url = u.String()
	p.wg.Add(1)
	go p.accept()
	return p
}

func (p *dropProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *dropProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// drop cuts every relayed connection, as a network failure would.
func (p *dropProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// cut takes the network down: relayed connections are cut and new ones
// refused until restore.
func (p *dropProxy) cut() {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
	p.drop()
}

func (p *dropProxy) restore() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

func (p *dropProxy) close() {
	p.ln.Close()
	p.drop()
	p.wg.Wait()
}

// startMediaNode starts a node on free ports with loopback media.
func startMediaNode(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.HTTPAddr = "127.0.0.1:0"
	cfg.Media.MediaPort = 0
	cfg.Media.IncludeLoopback = true
	cfg.Dev = true
	n, err := node.New(cfg, mediaLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node shutdown: %v", err)
		}
	})
	return n
}

func mediaLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// mediaEventually polls cond every 10 ms until it holds or timeout passes.
func mediaEventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
