package node_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/sdk/client"
)

// rulePolicy denies what its rules say, and records every request.
type rulePolicy struct {
	mu   sync.Mutex
	seen []core.PolicyRequest
}

func (p *rulePolicy) Decide(_ context.Context, req core.PolicyRequest) (core.Decision, error) {
	p.mu.Lock()
	p.seen = append(p.seen, req)
	p.mu.Unlock()
	switch {
	case req.Action == core.ActionJoin && req.Claims.Identity == "banned":
		return core.Decision{Code: core.CodeForbidden, Reason: "banned from this room"}, nil
	case req.Action == core.ActionJoin && req.Participants >= 3:
		return core.Decision{Code: core.CodeRoomFull, Reason: "policy: three is a crowd"}, nil
	case req.Action == core.ActionPublish && req.Track.Kind == core.KindVideo && req.Claims.Identity == "audio-only":
		return core.Decision{Reason: "audio-only may not publish video"}, nil
	case req.Action == core.ActionSubscribe && req.Claims.Identity == "blind":
		return core.Decision{Reason: "no subscriptions for you"}, nil
	case req.Action == core.ActionJoin && req.Claims.Identity == "narrowed":
		return core.Decision{Allow: true, Grants: &core.Grants{CanSubscribe: true}}, nil
	case req.Action == core.ActionJoin && req.Claims.Identity == "broken":
		return core.Decision{}, errors.New("policy backend down")
	}
	return core.Decision{Allow: true}, nil
}

func (p *rulePolicy) count(a core.Action, identity string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.seen {
		if r.Action == a && r.Claims.Identity == identity {
			n++
		}
	}
	return n
}

func dialErr(t *testing.T, n *node.Node, room, identity string) error {
	t.Helper()
	tok, _ := n.MintToken(room, identity, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.SignalURL(), tok, client.WithLoopback())
	if err == nil {
		c.Close()
	}
	return err
}

// TestPolicyDecisionsReachClients checks the policy seam: denials reach the
// client as typed errors carrying the policy's reason, a failing policy
// fails closed, and subscribe denials stop forwarding to that participant.
func TestPolicyDecisionsReachClients(t *testing.T) {
	pol := &rulePolicy{}
	n := newNode(t, func(c *node.Config) { c.Policy = pol })

	err := dialErr(t, n, "p", "banned")
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Code != core.CodeForbidden || ce.Message != "banned from this room" {
		t.Fatalf("banned join: %v", err)
	}
	if err := dialErr(t, n, "p", "broken"); !errors.Is(err, core.ErrForbidden) { // untyped failure: forbidden
		t.Fatalf("failing policy must deny: %v", err)
	}

	var viewerGot sync.WaitGroup
	viewerGot.Add(1)
	var once sync.Once
	connectClient(t, n, "p", "viewer", func(c *client.Client) {
		c.OnTrack(func(*client.RemoteTrack) { once.Do(viewerGot.Done) })
	})
	blindTracks := make(chan struct{}, 1)
	connectClient(t, n, "p", "blind", func(c *client.Client) {
		c.OnTrack(func(*client.RemoteTrack) { blindTracks <- struct{}{} })
	})
	ao := connectClient(t, n, "p", "audio-only", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ao.PublishRTP(ctx, webrtc.MimeTypeVP8); !errors.As(err, &ce) || ce.Message != "audio-only may not publish video" {
		t.Fatalf("video publish by audio-only: %v", err)
	}
	lt, err := ao.PublishRTP(ctx, webrtc.MimeTypeOpus)
	if err != nil {
		t.Fatalf("audio publish: %v", err)
	}
	done := make(chan struct{})
	pctx, stop := context.WithCancel(context.Background())
	go pump(pctx, lt, done)
	defer func() { stop(); <-done }()
	viewerGot.Wait()
	eventually(t, 5*time.Second, "blind's subscribe asked and denied", func() bool { return pol.count(core.ActionSubscribe, "blind") > 0 })
	select {
	case <-blindTracks:
		t.Fatal("a participant denied subscribing received a track")
	case <-time.After(300 * time.Millisecond):
	}
	// A join decision may narrow the token's grants.
	nw := connectClient(t, n, "narrow", "narrowed", nil)
	if lp := nw.LocalParticipant(); lp.Grants.CanPublish || !lp.Grants.CanSubscribe {
		t.Fatalf("grants after a narrowing join decision: %+v", lp.Grants)
	}
	if _, err := nw.PublishRTP(ctx, webrtc.MimeTypeOpus); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("publish with narrowed grants: %v", err)
	}
	if err := dialErr(t, n, "p", "fourth"); !errors.Is(err, core.ErrRoomFull) {
		t.Fatalf("policy room limit: %v", err)
	}
}
