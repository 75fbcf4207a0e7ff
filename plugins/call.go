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

// call runs hook h with input on a pooled instance of g. It enforces the
// back-off and the input limit, discards the instance on any trap,
// timeout, out-of-memory or bad output, keeps the counters, and hands
// webhooks the call asked for to the sink once the call has succeeded.
func (g *generation) call(ctx context.Context, h abi.Hook, input []byte, decode decodeFunc) (*callState, error) {
	if !g.state.admit(time.Now()) {
		return nil, g.callError(h, ErrBackedOff, "", nil)
	}
	if len(input) > g.limits.MaxInput {
		return nil, g.callError(h, ErrInputTooLarge, fmt.Sprintf("%d bytes, limit %d", len(input), g.limits.MaxInput), nil)
	}
	inst, err := g.acquire(ctx)
	if err != nil {
		ce := g.callError(h, ErrInit, err.Error(), nil)
		if ctx.Err() != nil {
			ce.Kind = ErrCanceled
		}
		g.state.record(ce, 0)
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
	g.state.record(err, time.Since(start))
	if err != nil {
		g.logFailure(err)
		return cs, err
	}
	g.flushWebhooks(ctx, cs)
	return cs, nil
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

// flushWebhooks hands the call's webhooks to the sink. Ids left empty by
// the plugin are derived from the plugin, the call's input and the
// position, so the same event always yields the same id.
func (g *generation) flushWebhooks(ctx context.Context, cs *callState) {
	for i, req := range cs.webhooks {
		if req.ID == "" {
			h := sha256.New()
			h.Write([]byte(g.spec.Name + "\x00" + string(cs.hook) + "\x00"))
			h.Write(cs.input)
			h.Write([]byte("\x00" + strconv.Itoa(i) + "\x00" + req.URL))
			req.ID = "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
		}
		w := Webhook{Plugin: g.spec.Name, PluginVersion: g.spec.Version, Request: req, Created: time.Now()}
		if err := g.host.sink.Enqueue(ctx, w); err != nil {
			g.state.stats.webhookErrors.Add(1)
			g.log.Warn("webhook sink refused a webhook", "id", req.ID, "target", req.Target, "err", err)
			continue
		}
		g.state.stats.webhooks.Add(1)
	}
}
