package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/parleyhq/parley/abi"
)

// decodeFunc validates a hook's output while its instance is still held,
// so an instance producing garbage is discarded like one that trapped.
type decodeFunc func(out []byte, set bool) error

// call runs hook h with input on a pooled instance of g (see run) and,
// once the call has succeeded, hands the webhooks it asked for to the
// sink.
func (g *generation) call(ctx context.Context, h abi.Hook, input []byte, decode decodeFunc) (*callState, error) {
	cs, err := g.run(ctx, h, input, decode)
	if err == nil {
		g.flushWebhooks(ctx, cs)
	}
	return cs, err
}

// run runs hook h with input on a pooled instance of g. It enforces the
// back-off and the input limit, discards the instance on any trap,
// timeout, out-of-memory or bad output, and keeps the counters. The
// webhooks the call asked for stay in the returned callState. A call whose
// ctx has already ended fails with ErrCanceled without running.
func (g *generation) run(ctx context.Context, h abi.Hook, input []byte, decode decodeFunc) (*callState, error) {
	hi := hookIndex(h)
	if err := ctx.Err(); err != nil { // the caller already gave up: do not start
		ce := g.callError(h, ErrCanceled, err.Error(), nil)
		g.state.record(hi, ce, 0, false)
		return nil, ce
	}
	if !g.state.admit(time.Now()) {
		ce := g.callError(h, ErrBackedOff, "", nil)
		g.state.refused(hi, ce)
		return nil, ce
	}
	if len(input) > g.limits.MaxInput {
		ce := g.callError(h, ErrInputTooLarge, fmt.Sprintf("%d bytes, limit %d", len(input), g.limits.MaxInput), nil)
		g.state.refused(hi, ce)
		return nil, ce
	}
	inst, err := g.acquire(ctx)
	if err != nil {
		ce := g.callError(h, ErrInit, err.Error(), nil)
		if ctx.Err() != nil {
			ce.Kind = ErrCanceled
		}
		g.state.record(hi, ce, 0, false)
		return nil, ce
	}
	start := time.Now()
	cs, err := g.invoke(ctx, inst, h, input, g.limits.CallTimeout)
	if err == nil && decode != nil {
		if derr := decode(cs.output, cs.outputSet); derr != nil {
			err = g.callError(h, ErrBadOutput, derr.Error(), inst)
		}
	}
	g.release(ctx, inst, !discards(err))
	g.state.record(hi, err, time.Since(start), true)
	if err != nil {
		g.logFailure(err)
	}
	return cs, err
}

// logFailure logs a failed call, with the guest's output when it has any.
func (g *generation) logFailure(err error) {
	ce, ok := err.(*CallError)
	if !ok {
		g.log.Warn("plugin call failed", "err", err)
		return
	}
	attrs := []any{"hook", ce.Hook, "kind", ce.Kind, "message", ce.Message}
	if ce.Output != "" {
		attrs = append(attrs, "output", ce.Output)
	}
	g.log.Warn("plugin call failed", attrs...)
}

// flushWebhooks hands the call's webhooks to the sink.
func (g *generation) flushWebhooks(ctx context.Context, cs *callState) {
	for _, w := range g.webhooks(cs) {
		if err := g.host.sink.Enqueue(ctx, w); err != nil {
			g.state.stats.webhookErrors.Add(1)
			g.log.Warn("webhook sink refused a webhook", "id", w.Request.ID, "target", w.Request.Target, "err", err)
			continue
		}
		g.state.stats.webhooks.Add(1)
	}
}

// webhooks returns the webhooks a successful call asked for. Ids left
// empty by the plugin are derived from the plugin, the hook, the call's
// input and the position, so the same event always yields the same ids.
func (g *generation) webhooks(cs *callState) []Webhook {
	if len(cs.webhooks) == 0 {
		return nil
	}
	now := time.Now()
	out := make([]Webhook, 0, len(cs.webhooks))
	for i, req := range cs.webhooks {
		if req.ID == "" {
			req.ID = webhookID(g.spec.Name, cs.hook, cs.input, i, req.URL)
		}
		out = append(out, Webhook{Plugin: g.spec.Name, PluginVersion: g.spec.Version, Request: req, Created: now})
	}
	return out
}

// webhookID derives the id of the i-th webhook, to url, of a call of
// plugin's hook h with input.
func webhookID(plugin string, h abi.Hook, input []byte, i int, url string) string {
	d := sha256.New()
	d.Write([]byte(plugin + "\x00" + string(h) + "\x00"))
	d.Write(input)
	d.Write([]byte("\x00" + strconv.Itoa(i) + "\x00" + url))
	return "msg_" + hex.EncodeToString(d.Sum(nil)[:16])
}
