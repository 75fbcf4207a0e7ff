package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

// Compile-time checks that Manager serves the core's seams.
var (
	_ core.Authenticator = (*Manager)(nil)
	_ core.Policy        = (*Manager)(nil)
	_ core.Presence      = (*Manager)(nil)
)

// Step is one plugin's part in a chain evaluation.
type Step struct {
	Plugin     string
	Version    string
	Generation uint64
	Decision   abi.Decision
	Latency    time.Duration
	Err        error
}

// Verdict is the outcome of a policy chain: the merged decision and what
// each plugin said, in order. Steps stop at the first deny or failure.
type Verdict struct {
	Decision abi.Decision
	Steps    []Step
}

// Evaluate runs policy hook h (join, publish or subscribe) over the chain
// with req (an abi.JoinRequest, abi.PublishRequest or
// abi.SubscribeRequest). The first deny wins; a failing plugin denies with
// CodeUnavailable and returns its error (fail closed). When every plugin
// allows, grants are intersected, the lowest non-zero max bitrate wins and
// the last metadata set wins. No plugin means allow.
func (m *Manager) Evaluate(ctx context.Context, h abi.Hook, req any) (Verdict, error) {
	if h != abi.HookJoin && h != abi.HookPublish && h != abi.HookSubscribe {
		return Verdict{}, fmt.Errorf("%w: %q is not a policy hook", ErrHookNotServed, h)
	}
	input, err := json.Marshal(req)
	if err != nil {
		return Verdict{}, fmt.Errorf("plugins: encode %s request: %w", h, err)
	}
	gens := m.chain(h)
	defer leave(gens)
	v := Verdict{Decision: abi.Allow(), Steps: make([]Step, 0, len(gens))}
	for _, g := range gens {
		var d abi.Decision
		start := time.Now()
		_, err := g.call(ctx, h, input, func(out []byte, set bool) (err error) {
			if !set {
				return errNoOutput
			}
			d, err = decodeDecision(out)
			return err
		})
		v.Steps = append(v.Steps, Step{Plugin: g.spec.Name, Version: g.spec.Version, Generation: g.id,
			Decision: d, Latency: time.Since(start), Err: err})
		if err != nil {
			v.Decision = abi.Deny(abi.CodeUnavailable, fmt.Sprintf("policy plugin %s is unavailable", g.spec.Name))
			return v, err
		}
		if !d.Allow {
			g.state.stats.denials.Add(1)
			v.Decision = d
			return v, nil
		}
		v.Decision = merge(v.Decision, d)
	}
	return v, nil
}

// merge folds an allowing decision into the accumulated one.
func merge(acc, d abi.Decision) abi.Decision {
	if d.MaxBitrate > 0 && (acc.MaxBitrate == 0 || d.MaxBitrate < acc.MaxBitrate) {
		acc.MaxBitrate = d.MaxBitrate
	}
	if d.Metadata != nil {
		acc.Metadata = d.Metadata
	}
	if d.Grants != nil {
		if acc.Grants == nil {
			g := *d.Grants
			acc.Grants = &g
		} else {
			acc.Grants.CanPublish = acc.Grants.CanPublish && d.Grants.CanPublish
			acc.Grants.CanSubscribe = acc.Grants.CanSubscribe && d.Grants.CanSubscribe
			acc.Grants.CanPublishData = acc.Grants.CanPublishData && d.Grants.CanPublishData
		}
	}
	return acc
}

// Decide implements core.Policy over the join, publish and subscribe
// chains. A denial is a Decision (with the plugin's code and reason), not
// an error; a plugin failure returns a denying Decision with
// CodeUnavailable and an error wrapping the cause.
func (m *Manager) Decide(ctx context.Context, req core.PolicyRequest) (core.Decision, error) {
	h, in, ok := policyRequest(ctx, req)
	if !ok {
		return core.Decision{Code: core.CodeBadRequest, Reason: "unknown action"},
			core.Errorf(core.CodeBadRequest, "plugins: unknown policy action %q", req.Action)
	}
	v, err := m.Evaluate(ctx, h, in)
	d := decisionToCore(v.Decision)
	if err != nil {
		return d, &core.Error{Code: core.CodeUnavailable, Message: v.Decision.Reason, Err: err}
	}
	return d, nil
}

// Authenticate implements core.Authenticator over the auth chain. Plugins
// run in order: a deny ends the chain with the plugin's code (invalid_token
// unless it names another) and reason; a skip passes to the next; the
// first allow supplies the claims, and later plugins see them and may
// still deny. No allow at all is invalid_token; a failing plugin is
// CodeUnavailable (fail closed); no auth plugin loaded is CodeUnavailable.
func (m *Manager) Authenticate(ctx context.Context, token string) (core.Claims, error) {
	gens := m.chain(abi.HookAuth)
	defer leave(gens)
	if len(gens) == 0 {
		return core.Claims{}, core.Errorf(core.CodeUnavailable, "plugins: no auth plugin loaded")
	}
	info := clientInfo(ctx)
	req := abi.AuthRequest{Token: token, Host: info.Host, RemoteAddr: info.RemoteAddr}
	for _, g := range gens {
		input, err := json.Marshal(req)
		if err != nil {
			return core.Claims{}, fmt.Errorf("plugins: encode auth request: %w", err)
		}
		var r abi.AuthResult
		_, err = g.call(ctx, abi.HookAuth, input, func(out []byte, set bool) (err error) {
			if !set {
				return errNoOutput
			}
			r, err = decodeAuthResult(out, req.Claims != nil)
			return err
		})
		switch {
		case err != nil:
			return core.Claims{}, &core.Error{Code: core.CodeUnavailable,
				Message: fmt.Sprintf("auth plugin %s is unavailable", g.spec.Name), Err: err}
		case r.Skip:
		case !r.Allow:
			g.state.stats.denials.Add(1)
			return core.Claims{}, &core.Error{Code: core.Code(r.Code), Message: r.Reason}
		case req.Claims == nil:
			c := *r.Claims
			req.Claims = &c
		}
	}
	if req.Claims == nil {
		return core.Claims{}, &core.Error{Code: core.CodeInvalidToken, Message: "no auth plugin accepted the token", Err: ErrAllSkipped}
	}
	return claimsToCore(*req.Claims), nil
}
