package node_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/sdk/client"
)

// TestChurnKeepsCallAndLeaksNothing joins and leaves clients repeatedly
// (each publishing and subscribing) while a call runs, then checks the call
// never stopped, the room is back to its two members, and goroutines and
// heap return to where they were.
func TestChurnKeepsCallAndLeaksNothing(t *testing.T) {
	n := newNode(t, nil)
	c := startCall(t, n, "churn")

	settle := func() (int, uint64) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse
	}
	// Warm up once so lazily started pools do not count as leaks.
	churnOnce(t, n, "warm", c)
	time.Sleep(200 * time.Millisecond)
	baseG, baseHeap := settle()

	const rounds = 12
	for i := 0; i < rounds; i++ {
		churnOnce(t, n, fmt.Sprintf("churner-%d", i), c)
		if i%4 == 3 {
			c.checkFlowing(t)
		}
	}
	c.checkFlowing(t)
	eventually(t, 10*time.Second, "room back to two participants", func() bool {
		r := n.Rooms().Rooms()
		return len(r) == 1 && r[0].Participants == 2
	})
	var g int
	var heap uint64
	eventually(t, 15*time.Second, "goroutines back to baseline", func() bool {
		g, heap = settle()
		return g <= baseG+3
	})
	t.Logf("goroutines: baseline %d, after %d rounds %d; heap in use %d -> %d KiB", baseG, rounds, g, baseHeap>>10, heap>>10)
	if heap > baseHeap+32<<20 {
		t.Fatalf("heap grew from %d to %d KiB over %d churn rounds", baseHeap>>10, heap>>10, rounds)
	}
}

// churnOnce joins a client that publishes audio, waits until it receives the
// call's video, and leaves.
func churnOnce(t *testing.T, n *node.Node, identity string, c *call) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	got := make(chan struct{}, 1)
	cl := connectClient(t, n, "churn", identity, func(cl *client.Client) {
		cl.OnTrack(func(rt *client.RemoteTrack) {
			go func() {
				if _, _, err := rt.Track().ReadRTP(); err == nil {
					select {
					case got <- struct{}{}:
					default:
					}
				}
			}()
		})
	})
	if _, err := cl.PublishRTP(ctx, webrtc.MimeTypeOpus); err != nil {
		t.Fatalf("%s publish: %v", identity, err)
	}
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatalf("%s never received the call's media", identity)
	}
	if err := cl.Leave(ctx); err != nil {
		t.Fatalf("%s leave: %v", identity, err)
	}
}
