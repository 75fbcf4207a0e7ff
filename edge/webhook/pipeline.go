package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Pipeline is the processor and the deliverer over one Store, sharing
// their Stats. Run it while this node leads (always, on a single node).
// Its methods are safe for concurrent use.
type Pipeline struct {
	proc *processor
	dlv  *deliverer
	m    *metrics
}

// New returns a Pipeline over store. hook may be nil when no presence
// plugin runs: events then produce no webhooks but the cursor advances.
// log may be nil.
func New(cfg Config, store Store, hook Hook, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("webhook: a store is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := newMetrics()
	p := &Pipeline{m: m}
	p.dlv = newDeliverer(cfg, store, log, m)
	p.proc = newProcessor(cfg, store, hook, log, m, p.dlv.Notify)
	return p, nil
}

// Run processes and delivers until ctx ends (cancel it when this node
// stops leading), then waits for its goroutines and returns ctx's error.
// Do not run one Pipeline twice at once.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.proc.Run(ctx) })
	wg.Go(func() { p.dlv.Run(ctx) })
	wg.Wait()
	return ctx.Err()
}

// Notify nudges the pipeline to look at the store now (new presence events
// committed, or webhooks retried by the operator). It never blocks.
func (p *Pipeline) Notify() {
	p.proc.Notify()
	p.dlv.Notify()
}

// Stats returns the pipeline's figures; cheap.
func (p *Pipeline) Stats() Stats { return p.m.snapshot(time.Now()) }

// SetClient replaces the HTTP client used for deliveries (before Run), for
// a custom transport (proxy, TLS roots). Redirects are never followed
// whatever the client's CheckRedirect says.
func (p *Pipeline) SetClient(c *http.Client) { p.dlv.setClient(c) }

// nudge is a non-blocking wake-up signal.
type nudge chan struct{}

func newNudge() nudge { return make(nudge, 1) }

func (n nudge) notify() {
	select {
	case n <- struct{}{}:
	default:
	}
}
