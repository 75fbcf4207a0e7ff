package plugins

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/parleyhq/parley/abi"
)

// Info describes a loaded plugin.
type Info struct {
	Name         string
	Version      string
	SHA256       string
	Order        int
	Hooks        []abi.Hook
	Capabilities []abi.Capability
	Limits       Limits // effective limits
	LoadedAt     time.Time
	Stats        Stats
}

// List returns the loaded plugins in chain order.
func (m *Manager) List() []Info {
	es := m.snap.Load().entries
	infos := make([]Info, 0, len(es))
	for _, e := range es {
		infos = append(infos, e.info())
	}
	return infos
}

// Stats returns the counters of the plugin called name, which may have
// been unloaded since.
func (m *Manager) Stats(name string) (Stats, bool) {
	snap := m.snap.Load()
	if e := snap.byName[name]; e != nil {
		return e.info().Stats, true
	}
	if s := snap.states[name]; s != nil {
		return s.snapshot(hookSet{}), true
	}
	return Stats{}, false
}

// info describes the entry.
func (e *entry) info() Info {
	g := e.gen
	st := g.state.snapshot(g.hooks)
	st.Generation = g.id
	st.InstancesLive = g.live.Load()
	st.MemoryBytes = g.mem.Load()
	st.LoadTime = g.built
	st.WarmupTime = g.warm
	return Info{
		Name: e.spec.Name, Version: e.spec.Version, SHA256: e.spec.SHA256, Order: e.spec.Order,
		Hooks: g.hooks.list(), Capabilities: slices.Clone(e.spec.Capabilities), Limits: g.limits,
		LoadedAt: e.loadedAt, Stats: st,
	}
}

// LiveInstances returns how many plugin instances exist in the process,
// across all managers and generations.
func LiveInstances() int64 { return liveInstances.Load() }

// CallResult is the outcome of one hook call on one plugin.
type CallResult struct {
	Plugin     string
	Version    string
	Generation uint64
	Output     []byte // the output as the plugin set it; nil if none
	Latency    time.Duration
	Memory     int64 // bytes of linear memory of the plugin's live instances after the call
	Webhooks   []abi.WebhookRequest
}

// Call runs hook h of the plugin called name with a raw JSON input,
// bypassing the chain: for the admin API, plugin tests and diagnostics.
// The output is validated as the chain would (a Decision for join,
// publish and subscribe, an AuthResult for auth) and returned as the
// plugin set it.
func (m *Manager) Call(ctx context.Context, name string, h abi.Hook, input []byte) (CallResult, error) {
	g, err := m.enterPlugin(name)
	if err != nil {
		return CallResult{}, err
	}
	defer g.exit()
	if !g.serves(h) {
		return CallResult{}, fmt.Errorf("%w: plugin %q does not serve %q (serves %v)", ErrHookNotServed, name, h, g.hooks.list())
	}
	start := time.Now()
	cs, err := g.call(ctx, h, input, validator(h))
	res := CallResult{Plugin: g.spec.Name, Version: g.spec.Version, Generation: g.id,
		Latency: time.Since(start), Memory: g.mem.Load()}
	if cs != nil {
		if cs.outputSet {
			res.Output = cs.output
		}
		res.Webhooks = cs.webhooks
	}
	return res, err
}

// enterPlugin returns the current generation of a plugin, entered.
func (m *Manager) enterPlugin(name string) (*generation, error) {
	for {
		e := m.snap.Load().byName[name]
		if e == nil {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		if e.gen.enter() {
			return e.gen, nil
		}
	}
}

// validator returns the output check of hook h.
func validator(h abi.Hook) decodeFunc {
	switch h {
	case abi.HookJoin, abi.HookPublish, abi.HookSubscribe:
		return func(out []byte, set bool) error {
			if !set {
				return errNoOutput
			}
			_, err := decodeDecision(out)
			return err
		}
	case abi.HookAuth:
		return func(out []byte, set bool) error {
			if !set {
				return errNoOutput
			}
			_, err := decodeAuthResult(out, false)
			return err
		}
	}
	return nil
}
