package node_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/sdk/client"
)

// call is a running two-party call: a publishes VP8 RTP, b receives it.
type call struct {
	a, b     *client.Client
	received atomic.Int64
	data     atomic.Int64 // data messages b received
	stop     context.CancelFunc
	done     chan struct{}
}

// connectClient joins room as identity over WebSocket with loopback media;
// setup, if not nil, registers callbacks before the client connects.
func connectClient(t testing.TB, n *node.Node, room, identity string, setup func(*client.Client)) *client.Client {
	t.Helper()
	return connectClientOver(t, n, client.TransportWebSocket, room, identity, setup)
}

// connectClientOver is connectClient with signaling over tr.
func connectClientOver(t testing.TB, n *node.Node, tr client.Transport, room, identity string, setup func(*client.Client)) *client.Client {
	t.Helper()
	tok, err := n.MintToken(room, identity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(urlFor(t, n, tr), tok, append(optsFor(t, n, tr), client.WithLoopback())...)
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

// pump writes one VP8-typed RTP packet every 10ms until ctx ends.
func pump(ctx context.Context, lt *client.LocalTrack, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, 200)}
	for seq := uint16(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*900
		pkt.Payload[0] = 0x10 // VP8 descriptor: start of partition
		pkt.Payload[1] = byte(seq)
		_ = lt.WriteRTP(pkt)
	}
}

// startCall starts a call in room over WebSocket and waits until media
// flows.
func startCall(t *testing.T, n *node.Node, room string) *call {
	t.Helper()
	return startCallOver(t, n, client.TransportWebSocket, room)
}

// startCallOver is startCall with both clients signaling over tr.
func startCallOver(t *testing.T, n *node.Node, tr client.Transport, room string) *call {
	t.Helper()
	c := &call{done: make(chan struct{})}
	c.b = connectClientOver(t, n, tr, room, "callee", func(cl *client.Client) {
		cl.OnData(func(client.DataMessage) { c.data.Add(1) })
		cl.OnTrack(func(rt *client.RemoteTrack) {
			go func() {
				for {
					if _, _, err := rt.Track().ReadRTP(); err != nil {
						return
					}
					c.received.Add(1)
				}
			}()
		})
	})
	c.a = connectClientOver(t, n, tr, room, "caller", nil)
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	lt, err := c.a.PublishRTP(ctx, webrtc.MimeTypeVP8)
	if err != nil {
		t.Fatal(err)
	}
	go pump(ctx, lt, c.done)
	t.Cleanup(func() { cancel(); <-c.done })
	c.checkFlowing(t)
	return c
}

// checkFlowing asserts media keeps arriving and both clients are connected.
func (c *call) checkFlowing(t *testing.T) {
	t.Helper()
	before := c.received.Load()
	eventually(t, 10*time.Second, "media flowing in the call", func() bool { return c.received.Load() >= before+20 })
	for _, cl := range []*client.Client{c.a, c.b} {
		if st := cl.State(); st != client.StateConnected {
			t.Fatalf("call client in state %v", st)
		}
	}
}

// TestCallOverEachTransport holds the two-party call with signaling over
// each transport: media flows, a data message crosses, and both leave, the
// callee seeing the caller go.
func TestCallOverEachTransport(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.String(), func(t *testing.T) {
			n := newNode(t, nil)
			c := startCallOver(t, n, tr, "call-"+tr.String())
			for _, cl := range []*client.Client{c.a, c.b} {
				if got := cl.Transport(); got != tr {
					t.Fatalf("client signals over %v, want %v", got, tr)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.a.SendData(ctx, c.b.LocalParticipant().ID, map[string]string{"hi": "callee"}); err != nil {
				t.Fatalf("send data: %v", err)
			}
			eventually(t, 5*time.Second, "the data message at the callee", func() bool { return c.data.Load() == 1 })
			c.checkFlowing(t)
			if err := c.a.Leave(ctx); err != nil {
				t.Fatalf("caller leave: %v", err)
			}
			eventually(t, 5*time.Second, "the caller gone from the callee's room", func() bool { return len(c.b.Participants()) == 0 })
			if err := c.b.Leave(ctx); err != nil {
				t.Fatalf("callee leave: %v", err)
			}
			eventually(t, 5*time.Second, "the room removed", func() bool { return len(n.Rooms().Rooms()) == 0 })
		})
	}
}
