package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// drainTime is how long receivers keep reading after the publishers stop,
// so packets in flight are counted.
const drainTime = 500 * time.Millisecond

// maxErrors bounds the error messages kept in a report.
const maxErrors = 10

// bench is one run: its clients and the measuring window.
type bench struct {
	cfg    *config
	subs   int // receive-only subscribers per room in this run
	rooms  []string
	clk    clock
	log    *slog.Logger
	api    *webrtc.API
	tokens tokenSource
	sig    *signaling
	probe  *serverProbe

	// Window on the benchmark clock: packets sent in [winStart, winEnd)
	// are measured.
	winStart, winEnd atomic.Int64

	mu        sync.Mutex
	pubs      []*participant            // publishers (and meeting participants)
	recvs     []*participant            // every participant that receives
	roomPubs  map[string][]*participant // publishers by room
	failed    int                       // clients that did not join
	errs      []string
	nextTrack uint32
}

// newBench prepares a run with subs subscribers per room.
func newBench(cfg *config, subs int, tag string, probe *serverProbe, log *slog.Logger) (*bench, error) {
	api, err := newClientAPI()
	if err != nil {
		return nil, fmt.Errorf("client api: %w", err)
	}
	sig, err := resolveSignaling(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	b := &bench{
		cfg: cfg, subs: subs, clk: clock{start: time.Now()}, log: log, api: api,
		tokens: newTokenSource(cfg), sig: sig, probe: probe,
		roomPubs: make(map[string][]*participant),
	}
	for i := range cfg.Rooms {
		b.rooms = append(b.rooms, fmt.Sprintf("%s%s-r%d", cfg.RoomPrefix, tag, i))
	}
	b.winStart.Store(math.MaxInt64)
	b.winEnd.Store(math.MaxInt64)
	return b, nil
}

// inWindow reports whether a packet sent at sentNS is measured.
func (b *bench) inWindow(sentNS int64) bool {
	return sentNS >= b.winStart.Load() && sentNS < b.winEnd.Load()
}

// noteErr records a client failure.
func (b *bench) noteErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failed++
	if len(b.errs) < maxErrors {
		b.errs = append(b.errs, err.Error())
	}
	b.log.Warn("client failed", "err", err)
}

// params returns the join parameters of one client.
func (b *bench) params(room, name string, receive bool) joinParams {
	return joinParams{
		room: room, name: name, receive: receive, api: b.api, log: b.log,
		tokens: b.tokens, sig: b.sig, clk: b.clk,
		measuring: b.inWindow,
	}
}

// run joins everyone, measures for the configured duration and returns the
// report. The clients are gone when it returns.
func (b *bench) run(ctx context.Context) (*Report, error) {
	sendCtx, stopSending := context.WithCancel(ctx)
	var senders sync.WaitGroup
	defer b.closeAll()
	defer func() { stopSending(); senders.Wait() }()

	if err := b.joinPublishers(ctx, sendCtx, &senders); err != nil {
		return nil, err
	}
	b.joinSubscribers(ctx)
	joined := b.waitFlowing(ctx)
	b.log.Info("clients joined", "receivers_flowing", joined, "failed", b.failed)
	if err := sleep(ctx, b.cfg.Warmup); err != nil {
		return nil, err
	}
	m := b.measure(ctx, func() { stopSending(); senders.Wait() })
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return b.report(m), nil
}

// joinPublishers joins every room's publishers, publishes their tracks and
// starts sending; it returns once every track is reported published.
func (b *bench) joinPublishers(ctx, sendCtx context.Context, senders *sync.WaitGroup) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, b.cfg.Concurrency)
	for _, room := range b.rooms {
		for i := range b.cfg.Publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := b.joinPublisher(ctx, sendCtx, senders, room, i); err != nil {
					b.noteErr(err)
				}
			}()
		}
	}
	wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pubs) == 0 {
		return fmt.Errorf("no publisher could join: %v", b.errs)
	}
	return nil
}

// joinPublisher joins one publisher and starts its tracks.
func (b *bench) joinPublisher(ctx, sendCtx context.Context, senders *sync.WaitGroup, room string, i int) error {
	jctx, cancel := context.WithTimeout(ctx, b.cfg.JoinTimeout)
	defer cancel()
	receive := b.cfg.Mode == modeMeeting
	p, err := join(jctx, b.params(room, fmt.Sprintf("pub-%d", i), receive))
	if err != nil {
		return err
	}
	b.mu.Lock()
	first := b.nextTrack
	b.nextTrack += uint32(b.cfg.tracksPerPublisher())
	b.pubs = append(b.pubs, p) // closed by closeAll even if publishing fails
	b.mu.Unlock()
	if err := p.publish(jctx, b.cfg, first, b.clk); err != nil {
		return err
	}
	for _, t := range p.pubs {
		senders.Add(1)
		go func() {
			defer senders.Done()
			t.run(sendCtx)
		}()
	}
	for _, t := range p.pubs {
		if _, err := t.local.WaitPublished(jctx); err != nil {
			return fmt.Errorf("%s/%s: %w", room, p.name, err)
		}
	}
	b.mu.Lock()
	b.roomPubs[room] = append(b.roomPubs[room], p)
	if receive {
		b.recvs = append(b.recvs, p)
	}
	b.mu.Unlock()
	return nil
}

// joinSubscribers joins the receive-only subscribers, spread over --ramp.
func (b *bench) joinSubscribers(ctx context.Context) {
	total := b.subs * len(b.rooms)
	if total == 0 {
		return
	}
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, b.cfg.Concurrency)
	k := 0
	for i := range b.subs {
		for _, room := range b.rooms {
			at := start.Add(b.cfg.Ramp * time.Duration(k) / time.Duration(total))
			k++
			wg.Add(1)
			go func() {
				defer wg.Done()
				if sleep(ctx, time.Until(at)) != nil {
					return
				}
				sem <- struct{}{}
				defer func() { <-sem }()
				jctx, cancel := context.WithTimeout(ctx, b.cfg.JoinTimeout)
				defer cancel()
				p, err := join(jctx, b.params(room, fmt.Sprintf("sub-%d", i), true))
				if err != nil {
					b.noteErr(err)
					return
				}
				b.mu.Lock()
				b.recvs = append(b.recvs, p)
				b.mu.Unlock()
			}()
		}
	}
	wg.Wait()
}

// expectedTracks returns the publisher tracks receiver p should get.
func (b *bench) expectedTracks(p *participant) []*pubTrack {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*pubTrack
	for _, pub := range b.roomPubs[p.room] {
		if pub != p {
			out = append(out, pub.pubs...)
		}
	}
	return out
}

// waitFlowing waits until every receiver gets media on every track it
// expects, or the join timeout passes. It returns how many receivers do.
func (b *bench) waitFlowing(ctx context.Context) int {
	deadline := time.Now().Add(b.cfg.JoinTimeout)
	for {
		b.mu.Lock()
		recvs := append([]*participant(nil), b.recvs...)
		b.mu.Unlock()
		ok := 0
		for _, p := range recvs {
			if p.recv.flowing() >= len(b.expectedTracks(p)) {
				ok++
			}
		}
		if ok == len(recvs) || time.Now().After(deadline) || ctx.Err() != nil {
			for _, p := range recvs {
				if n := p.recv.flowing(); n < len(b.expectedTracks(p)) {
					b.log.Warn("receiver without every track", "client", p.room+"/"+p.name,
						"tracks", len(p.recv.trackList()), "flowing", n, "state", p.c.State().String())
				}
			}
			if ok < len(recvs) {
				b.noteErr(fmt.Errorf("%d of %d receivers did not get every track within %s",
					len(recvs)-ok, len(recvs), b.cfg.JoinTimeout))
			}
			return ok
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// closeAll makes every client leave, in parallel.
func (b *bench) closeAll() {
	b.mu.Lock()
	all := append(append([]*participant(nil), b.pubs...), b.recvs...)
	b.mu.Unlock()
	seen := make(map[*participant]bool)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, p := range all {
		if seen[p] {
			continue
		}
		seen[p] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			p.close(ctx)
		}()
	}
	wg.Wait()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
