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
	stop     context.CancelFunc
	done     chan struct{}
}

// connectClient joins room as identity with loopback media; setup, if not
// nil, registers callbacks before the client connects.
func connectClient(t testing.TB, n *node.Node, room, identity string, setup func(*client.Client)) *client.Client {
	t.Helper()
	tok, err := n.MintToken(room, identity, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(n.SignalURL(), tok, client.WithLoopback())
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

// startCall starts a call in room and waits until media flows.
func startCall(t *testing.T, n *node.Node, room string) *call {
	t.Helper()
	c := &call{done: make(chan struct{})}
	c.b = connectClient(t, n, room, "callee", func(cl *client.Client) {
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
	c.a = connectClient(t, n, room, "caller", nil)
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
