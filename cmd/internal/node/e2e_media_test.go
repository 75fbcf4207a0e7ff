package node_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/quic-go/quic-go"
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
// resume while its media keeps flowing. It runs with signaling over each
// transport.
func TestMediaThreeParticipants(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) { testMediaThreeParticipants(t, tr) })
	}
}

func testMediaThreeParticipants(t *testing.T, tr client.Transport) {
	// Registered first, so it runs last: once the clients and the node are
	// gone, nothing they started may still run.
	running := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, running) })
	n := newNode(t, nil)
	names := []string{"alice", "bob", "carol"}
	ps := make([]*mediaPeer, len(names))
	for i, name := range names {
		ps[i] = joinMediaPeer(t, n, tr, i, name)
	}
	for _, p := range ps {
		p.publish(t)
	}
	eventually(t, 15*time.Second, "every client receiving the other two's four tracks",
		every(ps, func(p *mediaPeer) bool { return len(p.lastCounters()) == 4 }))
	flowing(t, ps, "media flowing on all tracks")
	for _, p := range ps {
		p.checkTracks(t, names)
	}

	checkDataRouting(t, ps)
	checkResume(t, ps)

	for _, p := range ps {
		p.stopSending()
	}
	eventually(t, 10*time.Second, "every payload sent delivered",
		every(ps, func(p *mediaPeer) bool { return p.receivedAllSent(ps) }))
	for _, p := range ps {
		p.checkIntact(t, ps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range ps {
		if err := p.c.Leave(ctx); err != nil {
			t.Errorf("%s: leave: %v", p.name, err)
		}
	}
}

// checkDataRouting sends a message to the room and one to a participant,
// then a barrier to the room, and checks each client got exactly its share.
func checkDataRouting(t *testing.T, ps []*mediaPeer) {
	t.Helper()
	alice, bob, carol := ps[0], ps[1], ps[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range []struct {
		from *mediaPeer
		to   string
		msg  string
	}{{alice, "", "hello room"}, {bob, carol.id(), "psst carol"}, {carol, "", "barrier"}} {
		if err := m.from.c.SendData(ctx, m.to, map[string]string{"msg": m.msg}); err != nil {
			t.Fatalf("%s: send %q: %v", m.from.name, m.msg, err)
		}
	}
	// Events reach a client in order, so once the barrier is in, anything
	// sent to it before is in too.
	want := map[*mediaPeer][]string{
		alice: {"carol->room barrier"},
		bob:   {"alice->room hello room", "carol->room barrier"},
		carol: {"alice->room hello room", "bob->" + carol.id() + " psst carol"},
	}
	eventually(t, 5*time.Second, "data messages delivered", func() bool {
		return len(alice.logOf("data")) >= 1 && len(bob.logOf("data")) >= 2 && len(carol.logOf("data")) >= 2
	})
	time.Sleep(50 * time.Millisecond) // a stray extra message would show here
	for p, w := range want {
		if got := p.logOf("data"); fmt.Sprint(got) != fmt.Sprint(w) {
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
	alice.proxy.setDown(true)
	eventually(t, 5*time.Second, "alice noticing the drop", func() bool {
		return alice.c.State() == client.StateReconnecting
	})
	flowing(t, ps, "media flowing while alice's signaling is down")
	if st := alice.c.State(); st != client.StateReconnecting {
		t.Fatalf("alice in state %v while her network is down", st)
	}
	alice.proxy.setDown(false)
	eventually(t, 10*time.Second, "alice resuming", func() bool {
		return alice.reconnects.Load() > before && alice.c.State() == client.StateConnected
	})
	if err := alice.c.Err(); err != nil || alice.id() != id {
		t.Fatalf("alice after resume: participant %s (was %s), err %v", alice.id(), id, err)
	}
	flowing(t, ps, "media flowing after the resume")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alice.c.SendData(ctx, ps[1].id(), "after resume"); err != nil {
		t.Fatalf("alice: request after resume: %v", err)
	}
	for _, p := range ps {
		if n := len(p.lastCounters()); n != 4 {
			t.Errorf("%s has %d remote tracks after the resume, want 4", p.name, n)
		}
		if left := p.logOf("left"); len(left) > 0 {
			t.Errorf("%s saw participants leave: %q", p.name, left)
		}
	}
}

// flowing waits until every remote track of every client got 20 more
// payloads.
func flowing(t *testing.T, ps []*mediaPeer, what string) {
	t.Helper()
	marks := make([]map[string]uint32, len(ps))
	for i, p := range ps {
		marks[i] = p.lastCounters()
	}
	eventually(t, 10*time.Second, what, func() bool {
		for i, p := range ps {
			now := p.lastCounters()
			for id, last := range marks[i] {
				if now[id] < last+20 {
					return false
				}
			}
		}
		return true
	})
}

// TestMediaPublishControls covers the rest of the client's media surface
// against the real server: sample tracks, the Parley id of a published
// track, manual subscription, unsubscribe, unpublish, keyframe requests and
// publishing refused by policy.
func TestMediaPublishControls(t *testing.T) {
	running := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, running) })
	n := newNode(t, func(c *node.Config) { c.Policy = refuseVideo{identity: "carol"} })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := &watch{seen: map[string]bool{}}
	alice := mediaClient(t, n, "controls", "alice", nil)
	bob := mediaClient(t, n, "controls", "bob", w.register, client.WithAutoSubscribe(false))
	defer w.readers.Wait()

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
	writers.Go(func() { feed(stop, 33*time.Millisecond, func(i uint32) { _ = video.WriteSample(fakeVP8Frame(i)) }) })
	writers.Go(func() { feed(stop, 20*time.Millisecond, func(i uint32) { _ = audio.WriteRTP(fakeOpusPacket(i)) }) })
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
	eventually(t, 5*time.Second, "bob told of both tracks", w.has("published "+vinfo.ID, "published "+ainfo.ID))

	// Without auto-subscribe nothing arrives until bob asks.
	if err := bob.Subscribe(ctx, "TR_nosuchtrack"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("subscribe to a missing track: %v", err)
	}
	if err := bob.Subscribe(ctx, vinfo.ID); err != nil {
		t.Fatal(err)
	}
	arrived := fmt.Sprintf("track %s alice video %s", vinfo.ID, alice.LocalParticipant().ID)
	eventually(t, 10*time.Second, "alice's video at bob, as hers", w.has(arrived))
	eventually(t, 10*time.Second, "a keyframe request at alice", func() bool { return keyframes.Load() > 0 })
	if err := bob.Unsubscribe(ctx, vinfo.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "bob's video read ending after unsubscribe", w.has("ended "+vinfo.ID))

	if err := alice.Unpublish(ctx, audio); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "bob told the audio is gone", w.has("unpublished "+ainfo.ID))
	if ps := bob.Participants(); len(ps) != 1 || len(ps[0].Tracks) != 1 || ps[0].Tracks[0].ID != vinfo.ID {
		t.Fatalf("bob's view of the room: %+v", ps)
	}
	if err := alice.Unpublish(ctx, audio); !errors.Is(err, client.ErrUnknownTrack) {
		t.Fatalf("second unpublish: %v", err)
	}
	if w.has("track count 2")() {
		t.Fatal("bob received more tracks than the one he subscribed to")
	}
	checkRefusedPublish(ctx, t, n)
	for _, c := range []*client.Client{bob, alice} {
		if err := c.Leave(ctx); err != nil {
			t.Errorf("leave: %v", err)
		}
	}
}

// refuseVideo is a policy refusing video from one identity.
type refuseVideo struct{ identity string }

func (r refuseVideo) Decide(_ context.Context, req core.PolicyRequest) (core.Decision, error) {
	video := req.Action == core.ActionPublish && req.Track != nil && req.Track.Kind == core.KindVideo
	return core.Decision{Allow: !video || req.Claims.Identity != r.identity, Reason: "no video"}, nil
}

// checkRefusedPublish checks the publisher connection survives refused
// offers (pion cannot roll an offer back): a refused first offer, then a
// refused renegotiation while a track is live.
func checkRefusedPublish(ctx context.Context, t *testing.T, n *node.Node) {
	t.Helper()
	carol := mediaClient(t, n, "controls", "carol", nil)
	if _, err := carol.PublishRTP(ctx, webrtc.MimeTypeVP8); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("carol's video as first offer: %v", err)
	}
	stop := make(chan struct{})
	var writers sync.WaitGroup
	defer func() { close(stop); writers.Wait() }()
	for i := range 2 {
		audio, err := carol.PublishRTP(ctx, webrtc.MimeTypeOpus)
		if err != nil {
			t.Fatalf("carol's audio %d after a refusal: %v", i, err)
		}
		writers.Go(func() { feed(stop, 20*time.Millisecond, func(i uint32) { _ = audio.WriteRTP(fakeOpusPacket(i)) }) })
		if _, err := audio.WaitPublished(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.PublishRTP(ctx, webrtc.MimeTypeVP8); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("carol's video as renegotiation: %v", err)
		}
	}
	if err := carol.Leave(ctx); err != nil {
		t.Errorf("carol leave: %v", err)
	}
}

// TestDataPayloadIsJSONOnTheWire checks a data event carries the payload as
// the JSON value sent (docs/protocol.md: "payload": any), as a browser
// reading the raw event sees it.
func TestDataPayloadIsJSONOnTheWire(t *testing.T) {
	n := newNode(t, nil)
	raw, _ := joinRaw(t, n, "wire", "raw")
	sender := mediaClient(t, n, "wire", "sender", nil)
	if err := sender.SendData(context.Background(), "", map[string]int{"x": 1}); err != nil {
		t.Fatal(err)
	}
	ev := raw.nextEvent(protocol.TypeData)
	var d struct{ Payload json.RawMessage }
	if err := json.Unmarshal(ev.Data, &d); err != nil || string(d.Payload) != `{"x":1}` {
		t.Fatalf("data event on the wire is %s, want the payload as the JSON value {\"x\":1} (%v)", ev.Data, err)
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

// mediaPeer is one participant of the three-party test: its client, its
// sending tracks and what it received.
type mediaPeer struct {
	name    string
	index   int
	c       *client.Client
	proxy   signalProxy
	sending sync.WaitGroup
	stop    chan struct{}
	readers sync.WaitGroup

	reconnects atomic.Int32
	sent       [2]atomic.Uint32 // per kind: counters below this were sent

	mu   sync.Mutex
	recv map[string]*mediaRecv // by Parley track id
	logs map[string][]string   // "data", "left", "error"
}

// mediaRecv is one remote track as received.
type mediaRecv struct {
	identity, mime string
	kind           core.TrackKind
	index, kindIdx int // from the payloads
	first, last    uint32
	count          int
	bad            []string
	// missing are counters skipped so far; a late one (a NACK
	// retransmission under load) fills its gap, as a jitter buffer would.
	missing   map[uint32]bool
	reordered int
}

// joinMediaPeer connects name with signaling over tr through a proxy the
// test can take down.
func joinMediaPeer(t *testing.T, n *node.Node, tr client.Transport, index int, name string) *mediaPeer {
	t.Helper()
	p := &mediaPeer{name: name, index: index, stop: make(chan struct{}),
		recv: map[string]*mediaRecv{}, logs: map[string][]string{}}
	proxy, url := newSignalProxy(t, n, tr)
	p.proxy = proxy
	tok, err := n.MintToken("media", name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A dead network shows over QUIC as silence: a short idle timeout lets
	// the client notice within the test's patience (over TCP the proxy
	// cuts the connection).
	opts := append(optsFor(t, n, tr), client.WithQUICConfig(&quic.Config{
		MaxIdleTimeout: 1500 * time.Millisecond, KeepAlivePeriod: 300 * time.Millisecond,
	}))
	p.c = connectMedia(t, url, tok, func(c *client.Client) {
		c.OnTrack(p.onTrack)
		c.OnReconnect(func() { p.reconnects.Add(1) })
		c.OnParticipantLeft(func(l client.ParticipantLeft) { p.log("left", l.Identity+" ("+l.Reason+")") })
		c.OnData(func(m client.DataMessage) {
			var v struct{ Msg string }
			if err := m.Decode(&v); err != nil {
				v.Msg = err.Error()
			}
			to := m.To
			if to == "" {
				to = "room"
			}
			p.log("data", m.FromIdentity+"->"+to+" "+v.Msg)
		})
	}, opts...)
	t.Cleanup(func() {
		p.stopSending()
		p.c.Close()
		p.proxy.close()
		p.readers.Wait()
	})
	return p
}

func (p *mediaPeer) id() string { return p.c.LocalParticipant().ID }

func (p *mediaPeer) log(kind, s string) {
	p.mu.Lock()
	p.logs[kind] = append(p.logs[kind], s)
	p.mu.Unlock()
}

func (p *mediaPeer) logOf(kind string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs[kind]...)
}

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
		interval, step := 20*time.Millisecond, uint32(960)
		if kind == 1 {
			interval, step = 10*time.Millisecond, 900
		}
		p.sending.Go(func() {
			feed(p.stop, interval, func(i uint32) {
				pkt := &rtp.Packet{
					Header:  rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * step, Marker: true},
					Payload: makePayload(p.index, kind, i),
				}
				if err := lt.WriteRTP(pkt); err != nil {
					p.log("error", fmt.Sprintf("%s: write %d: %v", lt.ClientTrackID(), i, err))
				}
				p.sent[kind].Store(i + 1)
			})
		})
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

func (p *mediaPeer) onTrack(rt *client.RemoteTrack) {
	r := &mediaRecv{identity: rt.Identity(), mime: rt.Info().MimeType, kind: rt.Kind(), index: -1}
	p.mu.Lock()
	if _, dup := p.recv[rt.ID()]; dup {
		p.logs["error"] = append(p.logs["error"], "track "+rt.ID()+" arrived twice")
	}
	p.recv[rt.ID()] = r
	p.mu.Unlock()
	p.readers.Go(func() {
		for {
			pkt, _, err := rt.ReadRTP()
			if err != nil {
				return
			}
			p.mu.Lock()
			r.receive(pkt.Payload)
			p.mu.Unlock()
		}
	})
}

// receive checks one payload: intact, from the same publisher and kind as
// the track's first, and either the next counter or one that fills an
// earlier gap (a late retransmission); never a duplicate. p.mu held.
func (r *mediaRecv) receive(payload []byte) {
	index, kind, counter, err := parsePayload(payload)
	switch {
	case err != nil:
		r.bad = append(r.bad, err.Error())
	case r.count == 0:
		r.index, r.kindIdx, r.first, r.last, r.count = index, kind, counter, counter, 1
	case index != r.index || kind != r.kindIdx:
		r.bad = append(r.bad, fmt.Sprintf("payload of publisher %d kind %d on track of %d/%d", index, kind, r.index, r.kindIdx))
	case counter > r.last+1:
		if r.missing == nil {
			r.missing = map[uint32]bool{}
		}
		for c := r.last + 1; c < counter; c++ {
			r.missing[c] = true
		}
		r.last = counter
		r.count++
	case counter <= r.last:
		if !r.missing[counter] {
			r.bad = append(r.bad, fmt.Sprintf("counter %d duplicated or before the first (after %d)", counter, r.last))
			return
		}
		delete(r.missing, counter)
		r.reordered++
		r.count++
	default:
		r.last = counter
		r.count++
	}
}

// checkTracks checks the remote tracks' identities, kinds and codecs against
// what their payloads say about their publisher.
func (p *mediaPeer) checkTracks(t *testing.T, names []string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := map[string]bool{}
	for id, r := range p.recv {
		if r.index < 0 || r.index >= len(names) || r.index == p.index {
			t.Errorf("%s: track %s carries payloads of publisher %d", p.name, id, r.index)
			continue
		}
		want := names[r.index] + " audio " + webrtc.MimeTypeOpus
		if r.kindIdx == 1 {
			want = names[r.index] + " video " + webrtc.MimeTypeVP8
		}
		if got := fmt.Sprintf("%s %s %s", r.identity, r.kind, r.mime); got != want {
			t.Errorf("%s: track %s reported as %q; its payloads are %q's", p.name, id, got, want)
		}
		seen[want] = true
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
	for _, e := range p.logs["error"] {
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
		if len(r.missing) > 0 {
			t.Errorf("%s: track %s (%s %s): %d payloads never arrived", p.name, id, r.identity, r.kind, len(r.missing))
		}
		t.Logf("%s <- %s %s: %d payloads (%d..%d of %d sent), all intact, in sequence order (%d retransmitted late)",
			p.name, r.identity, r.kind, r.count, r.first, r.last, sent, r.reordered)
	}
}

// watch records what a client is told: "published ID", "unpublished ID",
// "track ID IDENTITY KIND PARTICIPANT" (arrived) and "ended ID" (its reads
// ended).
type watch struct {
	mu      sync.Mutex
	seen    map[string]bool
	tracks  int
	readers sync.WaitGroup
}

func (w *watch) register(c *client.Client) {
	c.OnTrackPublished(func(ti client.TrackInfo) { w.mark("published " + ti.ID) })
	c.OnTrackUnpublished(func(ti client.TrackInfo) { w.mark("unpublished " + ti.ID) })
	c.OnTrack(func(rt *client.RemoteTrack) {
		w.mark(fmt.Sprintf("track %s %s %s %s", rt.ID(), rt.Identity(), rt.Kind(), rt.ParticipantID()))
		w.readers.Go(func() {
			for {
				if _, _, err := rt.ReadRTP(); err != nil {
					w.mark("ended " + rt.ID())
					return
				}
			}
		})
	})
}

func (w *watch) mark(s string) {
	w.mu.Lock()
	w.seen[s] = true
	if strings.HasPrefix(s, "track TR_") {
		w.tracks++
		w.seen[fmt.Sprint("track count ", w.tracks)] = true
	}
	w.mu.Unlock()
}

func (w *watch) has(all ...string) func() bool {
	return func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, s := range all {
			if !w.seen[s] {
				return false
			}
		}
		return true
	}
}

// feed calls write with 0, 1, 2... every interval until stop closes.
func feed(stop <-chan struct{}, interval time.Duration, write func(i uint32)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := uint32(0); ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
			write(i)
		}
	}
}

// fakeVP8Frame is a 1500-byte "keyframe" (bit 0 of byte 0 clear): two RTP
// packets once packetized.
func fakeVP8Frame(uint32) media.Sample {
	return media.Sample{Data: make([]byte, 1500), Duration: 33 * time.Millisecond}
}

func fakeOpusPacket(i uint32) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960}, Payload: []byte{0xfc, 1, 2, 3}}
}

// mediaClient connects identity to room; see connectMedia.
func mediaClient(t *testing.T, n *node.Node, room, identity string, setup func(*client.Client), opts ...client.Option) *client.Client {
	t.Helper()
	tok, err := n.MintToken(room, identity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return connectMedia(t, n.SignalURL(), tok, setup, opts...)
}

// connectMedia connects a client with loopback media; setup, if not nil,
// registers callbacks first. The client is closed when the test ends.
func connectMedia(t *testing.T, url, tok string, setup func(*client.Client), opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithLoopback(), client.WithLogger(mediaLogger())}, opts...)
	c, err := client.New(url, tok, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mediaLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// every returns a condition that holds when cond holds for every peer.
func every(ps []*mediaPeer, cond func(*mediaPeer) bool) func() bool {
	return func() bool {
		for _, p := range ps {
			if !cond(p) {
				return false
			}
		}
		return true
	}
}
