package plugins

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/parleyhq/parley/abi"
)

// Manager owns the loaded plugins and runs their hooks. Load, Replace,
// Unload, Apply and ReloadDir change the plugin set while calls are in
// flight: a new generation is compiled and warmed first, swapped in
// atomically, and the old one is drained and closed, so no call fails or
// sees a half-loaded plugin. Manager implements core.Authenticator,
// core.Policy and core.Presence over the hook chains.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	cache wazero.CompilationCache
	host  hostDeps
	owned *DirectSink // the default sink, closed with the manager

	mu      sync.Mutex // serializes changes to the plugin set
	closed  bool
	entries map[string]*entry
	states  map[string]*pluginState // kept across Unload for metrics

	snap   atomic.Pointer[snapshot]
	genSeq atomic.Uint64
}

// entry is a loaded plugin.
type entry struct {
	spec     Spec
	gen      *generation
	loadedAt time.Time
}

// snapshot is an immutable view of the plugin set: for each hook, the
// generations serving it in chain order.
type snapshot struct {
	chains  [numHooks][]*generation
	entries []*entry                // chain order
	byName  map[string]*entry       // loaded plugins
	states  map[string]*pluginState // every plugin ever loaded
	closed  bool                    // the manager is closed
}

// Option changes how NewManager builds a Manager.
type Option func(*Manager)

// WithWebhookSink makes the webhook capability hand requests to sink
// instead of a DirectSink owned by the Manager.
func WithWebhookSink(sink WebhookSink) Option { return func(m *Manager) { m.host.sink = sink } }

// WithKVStore backs the kv capability with store instead of a MemoryKV.
func WithKVStore(store KVStore) Option { return func(m *Manager) { m.host.kv = store } }

// NewManager validates cfg, opens the compilation cache and returns an
// empty Manager. Close releases it.
func NewManager(cfg Config, log *slog.Logger, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: log, entries: map[string]*entry{}, states: map[string]*pluginState{}}
	for _, o := range opts {
		o(m)
	}
	m.cache = wazero.NewCompilationCache()
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("%w: cache_dir: %w", ErrInvalidConfig, err)
		}
		m.cache = c
	}
	if m.host.kv == nil {
		m.host.kv = NewMemoryKV()
	}
	if m.host.sink == nil {
		m.owned = NewDirectSink(DirectSinkConfig{}, log)
		m.host.sink = m.owned
	}
	m.snap.Store(&snapshot{})
	return m, nil
}

// Load compiles, checks and warms a new plugin and adds it to the chains.
// It fails with ErrExists if the name is loaded.
func (m *Manager) Load(ctx context.Context, spec Spec) error {
	return m.install(ctx, spec, false, true)
}

// Replace swaps a loaded plugin for a new generation built from spec. The
// old generation keeps serving until the new one is warm, then drains.
// It fails with ErrNotFound if the name is not loaded.
func (m *Manager) Replace(ctx context.Context, spec Spec) error {
	return m.install(ctx, spec, true, false)
}

// Upsert loads spec, or replaces the plugin of that name.
func (m *Manager) Upsert(ctx context.Context, spec Spec) error {
	return m.install(ctx, spec, true, true)
}

// install builds a generation for spec and swaps it in.
func (m *Manager) install(ctx context.Context, spec Spec, replace, load bool) error {
	spec, err := spec.normalize()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	old := m.entries[spec.Name]
	switch {
	case old != nil && !replace:
		return fmt.Errorf("%w: %q", ErrExists, spec.Name)
	case old == nil && !load:
		return fmt.Errorf("%w: %q", ErrNotFound, spec.Name)
	}
	state := m.states[spec.Name]
	if state == nil {
		state = newPluginState(spec.Name, m.cfg.Backoff, m.log)
	}
	gen, err := newGeneration(ctx, m, spec, m.genSeq.Add(1), state)
	if err != nil {
		return err
	}
	m.states[spec.Name] = state
	m.entries[spec.Name] = &entry{spec: spec, gen: gen, loadedAt: time.Now()}
	state.resetHealth()
	m.publish()
	gen.log.Info("plugin loaded", "sha256", spec.SHA256, "hooks", gen.hooks.list(),
		"capabilities", spec.Capabilities, "load_time", gen.built, "warmup", gen.warm)
	if old != nil {
		state.stats.reloads.Add(1)
		old.gen.retire(ctx, m.cfg.DrainTimeout)
	}
	return nil
}

// Unload removes a plugin from the chains, drains and closes it.
func (m *Manager) Unload(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	e := m.entries[name]
	if e == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	delete(m.entries, name)
	m.publish()
	e.gen.retire(ctx, m.cfg.DrainTimeout)
	e.gen.log.Info("plugin unloaded")
	return nil
}

// publish rebuilds the snapshot from the entries. Callers hold m.mu.
func (m *Manager) publish() {
	es := make([]*entry, 0, len(m.entries))
	for _, e := range m.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.spec.Order, b.spec.Order), cmp.Compare(a.spec.Name, b.spec.Name))
	})
	s := &snapshot{entries: es, byName: map[string]*entry{}, states: map[string]*pluginState{}, closed: m.closed}
	for _, e := range es {
		s.byName[e.spec.Name] = e
	}
	for name, st := range m.states {
		s.states[name] = st
	}
	for i, h := range abi.Hooks {
		for _, e := range es {
			if e.gen.serves(h) {
				s.chains[i] = append(s.chains[i], e.gen)
			}
		}
	}
	m.snap.Store(s)
}

// chain returns the generations serving h, each entered (so none closes
// while the caller uses it), from one consistent snapshot. The caller
// must call leave with the result.
func (m *Manager) chain(h abi.Hook) []*generation {
	i := hookIndex(h)
	for {
		gens := m.snap.Load().chains[i]
		n := 0
		for n < len(gens) && gens[n].enter() {
			n++
		}
		if n == len(gens) {
			return gens
		}
		leave(gens[:n]) // raced with a reload: take the new snapshot
	}
}

// leave ends what chain entered.
func leave(gens []*generation) {
	for _, g := range gens {
		g.exit()
	}
}

// Serves reports whether any loaded plugin serves hook h.
func (m *Manager) Serves(h abi.Hook) bool {
	i := hookIndex(h)
	return i >= 0 && len(m.snap.Load().chains[i]) > 0
}

// Close unloads every plugin, then closes the compilation cache and the
// default webhook sink. Calls after Close see an empty plugin set.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	es := m.entries
	m.entries = map[string]*entry{}
	m.publish()
	m.mu.Unlock()
	for _, e := range es {
		e.gen.retire(ctx, m.cfg.DrainTimeout)
	}
	var errs []error
	if m.owned != nil {
		errs = append(errs, m.owned.Close(ctx))
	}
	errs = append(errs, m.cache.Close(context.WithoutCancel(ctx)))
	return errors.Join(errs...)
}
