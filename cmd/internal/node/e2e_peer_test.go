package node_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core/protocol"
	"github.com/parleyhq/parley/sdk/client"
)

// rawPeer is a pion publisher driven over a raw signaling connection, with
// its own UDP socket so a test can make it vanish without a goodbye.
type rawPeer struct {
	pc   *webrtc.PeerConnection
	sock net.PacketConn
	mux  interface{ Close() error }
}

func newRawPeer(t *testing.T) *rawPeer {
	t.Helper()
	sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	mux := webrtc.NewICEUDPMux(nil, sock)
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); mux.Close(); sock.Close() })
	return &rawPeer{pc: pc, sock: sock, mux: mux}
}

// publishRaw offers one video track over r and applies the answer. It
// returns the candidates the server trickled for the publisher connection.
func publishRaw(t *testing.T, r *rawWS, p *rawPeer) *candidateLog {
	t.Helper()
	track, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "s")
	if _, err := p.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, _ := p.pc.CreateOffer(nil)
	gathered := webrtc.GatheringCompletePromise(p.pc)
	p.pc.SetLocalDescription(offer)
	<-gathered
	r.request("pub", protocol.TypePublish, protocol.PublishRequest{Offer: protocol.SDP{Type: "offer", SDP: p.pc.LocalDescription().SDP}})
	cands := &candidateLog{}
	for {
		m, ok := r.next()
		if !ok {
			t.Fatal("closed during publish")
		}
		if m.Type == protocol.TypeTrickle && !m.IsResponse() {
			var tr protocol.Trickle
			protocol.DecodeData(&m, &tr)
			cands.add(tr.Candidate.Candidate)
			p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: tr.Candidate.Candidate, SDPMid: tr.Candidate.SDPMid, SDPMLineIndex: tr.Candidate.SDPMLineIndex})
			continue
		}
		if m.IsResponse() && m.ID == "pub" {
			if m.Err() != nil {
				t.Fatalf("publish: %v", m.Err())
			}
			var resp protocol.PublishResponse
			protocol.DecodeData(&m, &resp)
			if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: resp.Answer.SDP}); err != nil {
				t.Fatal(err)
			}
			go func() { // keep applying trickled candidates
				for {
					m, ok := r.next()
					if !ok {
						return
					}
					if m.Type == protocol.TypeTrickle && !m.IsResponse() {
						var tr protocol.Trickle
						protocol.DecodeData(&m, &tr)
						cands.add(tr.Candidate.Candidate)
						p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: tr.Candidate.Candidate, SDPMid: tr.Candidate.SDPMid, SDPMLineIndex: tr.Candidate.SDPMLineIndex})
					}
				}
			}()
			return cands
		}
	}
}

type candidateLog struct {
	mu   sync.Mutex
	list []string
}

func (c *candidateLog) add(s string) { c.mu.Lock(); c.list = append(c.list, s); c.mu.Unlock() }

func (c *candidateLog) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

// TestVanishedPeerIsRemoved makes a publisher's media disappear (its UDP
// socket closes, no DTLS goodbye) while its signaling socket stays open: the
// server must notice through ICE and remove it within a few seconds.
func TestVanishedPeerIsRemoved(t *testing.T) {
	n := newNode(t, func(c *node.Config) { c.Signal.ResumeGrace = time.Minute })
	watcher, _ := joinRaw(t, n, "vanish", "watcher")
	r, _ := joinRaw(t, n, "vanish", "ghost")
	p := newRawPeer(t)
	publishRaw(t, r, p)
	eventually(t, 10*time.Second, "publisher connected", func() bool {
		return p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	p.mux.Close()
	p.sock.Close()
	start := time.Now()
	ev := watcher.nextEventWithin(protocol.TypeParticipantLeft, 20*time.Second)
	var left protocol.ParticipantLeft
	protocol.DecodeData(&ev, &left)
	took := time.Since(start)
	t.Logf("vanished peer removed after %s (reason %q)", took.Round(10*time.Millisecond), left.Reason)
	if left.Identity != "ghost" || left.Reason != "media_failed" {
		t.Fatalf("left %+v", left)
	}
	if took > 8*time.Second {
		t.Fatalf("removal took %s", took)
	}
}

// TestPublicIPAnnounced checks NAT 1:1: the server's candidates carry the
// configured public address instead of its interface addresses.
func TestPublicIPAnnounced(t *testing.T) {
	n := newNode(t, func(c *node.Config) {
		c.Dev = false
		c.Media.IncludeLoopback = false
		c.Media.PublicIPs = []string{"203.0.113.7"}
	})
	r, _ := joinRaw(t, n, "nat", "a")
	cands := publishRaw(t, r, newRawPeer(t))
	eventually(t, 5*time.Second, "a server candidate", func() bool { return len(cands.all()) > 0 })
	for _, c := range cands.all() {
		if !strings.Contains(c, "203.0.113.7") {
			t.Fatalf("candidate without the public IP: %s", c)
		}
	}
}

// TestCodecsNegotiated publishes VP9 and H.264 (which both sides offer)
// and checks subscribers receive them with those codecs.
func TestCodecsNegotiated(t *testing.T) {
	n := newNode(t, nil)
	got := make(chan string, 4)
	connectClient(t, n, "codecs", "viewer", func(cl *client.Client) {
		cl.OnTrack(func(rt *client.RemoteTrack) {
			go func() {
				if _, _, err := rt.Track().ReadRTP(); err == nil {
					got <- rt.Track().Codec().MimeType
				}
			}()
		})
	})
	pub := connectClient(t, n, "codecs", "pub", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, mime := range []string{webrtc.MimeTypeVP9, webrtc.MimeTypeH264, webrtc.MimeTypeOpus} {
		lt, err := pub.PublishRTP(ctx, mime)
		if err != nil {
			t.Fatalf("publish %s: %v", mime, err)
		}
		done := make(chan struct{})
		go pump(ctx, lt, done)
		defer func() { cancel(); <-done }()
	}
	seen := map[string]bool{}
	timeout := time.After(15 * time.Second)
	for len(seen) < 3 {
		select {
		case m := <-got:
			seen[strings.ToLower(m)] = true
		case <-timeout:
			t.Fatalf("received codecs %v, want vp9, h264, opus", seen)
		}
	}
	for _, want := range []string{"video/vp9", "video/h264", "audio/opus"} {
		if !seen[want] {
			t.Fatalf("codec %s not received: %v", want, seen)
		}
	}
}
