package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

// Presence implements core.Presence: every presence plugin sees the event
// in chain order. Failures are logged and counted, never returned: presence
// fails open. Webhooks the plugins send go to the webhook sink, so they
// are only as durable as the sink (the default DirectSink keeps them in
// memory); PresenceWebhooks is the durable path.
func (m *Manager) Presence(ctx context.Context, ev core.PresenceEvent) {
	gens := m.chain(abi.HookPresence)
	defer leave(gens)
	if len(gens) == 0 {
		return
	}
	input, err := json.Marshal(presenceToABI(ctx, ev))
	if err != nil {
		m.log.Error("plugins: encode presence event", "err", err)
		return
	}
	for _, g := range gens {
		_, _ = g.call(ctx, abi.HookPresence, input, nil) // logged by call
	}
}

// PresenceWebhooks runs the presence hook of every presence plugin, in
// chain order, on ev and returns the webhooks they asked for, in that
// order, instead of handing them to the webhook sink. It is the durable
// path: the caller (the cluster leader, or a single node, running over its
// committed presence journal) stores the webhooks in its outbox together
// with its journal cursor, and a delivery worker sends them.
//
// Webhook ids are deterministic: a plugin's own id, or one derived from
// the plugin, the hook, the event as the plugin saw it and the request's
// position. When ev.ID is set (a journal's id), the event's abi id is
// ev.ID, so replaying a journal entry yields the same webhook ids; two
// calls with the same ev (and the same ClientInfo in ctx, which supplies
// PresenceEvent.Site) give identical requests.
//
// When some plugins fail, the webhooks of those that succeeded are
// returned with a *PresenceError listing the failures. IsTransient tells
// whether retrying the event may succeed (a timeout, a back-off, a
// cancellation, no instance available) or would fail the same way (a
// trap, bad output, an oversized input, the plugin reporting failure).
// A plugin that loops on one particular event times out every time, so
// callers bound their retries. With no presence plugin loaded the result
// is empty and nil; after Close it is ErrClosed.
//
// Threading: safe for concurrent use, but a caller that needs plugins to
// see events in journal order calls it for one event at a time, in that
// order. It blocks for up to the plugins' call deadlines (plus any wait
// for a free instance) and returns early, with ErrCanceled failures, when
// ctx ends. It never touches the webhook sink; the returned slice is the
// caller's.
func (m *Manager) PresenceWebhooks(ctx context.Context, ev core.PresenceEvent) ([]Webhook, error) {
	if m.snap.Load().closed {
		return nil, ErrClosed
	}
	gens := m.chain(abi.HookPresence)
	defer leave(gens)
	if len(gens) == 0 {
		return nil, nil
	}
	aev := presenceToABI(ctx, ev)
	input, err := json.Marshal(aev)
	if err != nil {
		return nil, fmt.Errorf("plugins: encode presence event: %w", err)
	}
	var out []Webhook
	var failures []error
	for _, g := range gens {
		cs, err := g.run(ctx, abi.HookPresence, input, nil) // failures are logged by run
		if err != nil {
			failures = append(failures, err)
			continue
		}
		ws := g.webhooks(cs)
		g.state.stats.webhooks.Add(uint64(len(ws)))
		out = append(out, ws...)
	}
	if len(failures) > 0 {
		return out, &PresenceError{EventID: aev.ID, Kind: aev.Kind, Plugins: len(gens), Failures: failures}
	}
	return out, nil
}

// PresenceError reports the presence plugins that failed on one event in
// PresenceWebhooks; the webhooks of the others are returned with it.
type PresenceError struct {
	EventID string // the event's abi id
	Kind    string // the event's kind
	Plugins int    // presence plugins run
	// Failures has one error per failed plugin, in chain order; each is
	// a *CallError.
	Failures []error
}

// Error implements error.
func (e *PresenceError) Error() string {
	msgs := make([]string, len(e.Failures))
	for i, err := range e.Failures {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("plugins: presence event %s (%s): %d of %d plugins failed: %s",
		e.EventID, e.Kind, len(e.Failures), e.Plugins, strings.Join(msgs, "; "))
}

// Unwrap returns the failures, so errors.Is(err, ErrTimeout) and
// errors.As(err, **CallError) look into them.
func (e *PresenceError) Unwrap() []error { return e.Failures }

// Transient reports whether retrying the event may give more webhooks:
// at least one failure is transient.
func (e *PresenceError) Transient() bool {
	for _, err := range e.Failures {
		if IsTransient(err) {
			return true
		}
	}
	return false
}

// Transient reports whether the call may succeed if made again with the
// same input: true for a timeout, a back-off, a cancellation and a failure
// to get an instance (ErrInit); false for a trap, out of memory, bad
// output, an oversized input, a hook the plugin does not serve and the
// plugin reporting failure itself, which the same input reproduces.
func (e *CallError) Transient() bool { return isTransientKind(e.Kind) }

func isTransientKind(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrBackedOff) || errors.Is(err, ErrCanceled) ||
		errors.Is(err, ErrInit) || errors.Is(err, ErrClosed)
}

// IsTransient reports whether an error from PresenceWebhooks or a hook
// call is worth retrying: it asks an error in err's chain with a
// Transient method (*PresenceError, *CallError), else matches the
// transient sentinels (ErrTimeout, ErrBackedOff, ErrCanceled, ErrInit,
// ErrClosed: another process may take over). nil is not transient.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	return isTransientKind(err)
}
