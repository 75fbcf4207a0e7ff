package plugins

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/parleyhq/parley/abi"
)

// hostDeps are the services host functions reach.
type hostDeps struct {
	kv   KVStore
	sink WebhookSink
}

// generation is one loaded version of one plugin: its own wazero runtime
// (carrying the plugin's memory limit), the compiled module, the host
// modules it was granted and a pool of instances. A generation never
// changes; a reload builds a new one and retires this.
type generation struct {
	id       uint64
	spec     Spec
	limits   Limits
	hooks    hookSet
	log      *slog.Logger
	host     hostDeps
	state    *pluginState
	logLimit *rateLimiter

	rt      wazero.Runtime
	code    wazero.CompiledModule
	modCfg  wazero.ModuleConfig
	initReq []byte

	idle  chan *instance // instances ready for a call
	slots chan struct{}  // one token per existing instance
	mem   atomic.Int64   // bytes of linear memory of live instances
	live  atomic.Int64   // live instances
	warm  time.Duration  // how long the load's warm-up took
	built time.Duration  // compile + check + warm-up

	inflight  atomic.Int64
	retired   atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
}

// liveInstances counts instances of every generation in the process, for
// tests and metrics.
var liveInstances atomic.Int64

// newGeneration compiles spec, checks it against the ABI and its grants,
// and warms its pool. On error nothing is left behind.
func newGeneration(ctx context.Context, m *Manager, spec Spec, id uint64, state *pluginState) (*generation, error) {
	start := time.Now()
	limits := spec.Limits.Or(m.cfg.Defaults).Or(DefaultLimits())
	if err := limits.Validate(); err != nil {
		return nil, fmt.Errorf("plugin %q: %w", spec.Name, err)
	}
	g := &generation{
		id: id, spec: spec, limits: limits, state: state,
		log:      m.log.With("plugin", spec.Name, "version", spec.Version, "generation", id),
		host:     m.host,
		logLimit: newRateLimiter(limits.LogRate, 2*limits.LogRate),
		idle:     make(chan *instance, limits.PoolSize),
		slots:    make(chan struct{}, limits.PoolSize),
		drained:  make(chan struct{}),
	}
	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(m.cache).
		WithMemoryLimitPages(limits.MemoryPages).
		WithCloseOnContextDone(true)
	g.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if err := g.setup(ctx); err != nil {
		_ = g.rt.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	g.built = time.Since(start)
	return g, nil
}

// setup compiles, checks, defines host modules and warms the pool.
func (g *generation) setup(ctx context.Context) error {
	code, err := g.rt.CompileModule(ctx, g.spec.Module)
	if err != nil {
		return fmt.Errorf("%w: plugin %q: %w", ErrCompile, g.spec.Name, err)
	}
	g.code = code
	if g.hooks, err = checkModule(g.spec, code); err != nil {
		return err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, g.rt); err != nil {
		return fmt.Errorf("plugins: wasi: %w", err)
	}
	if err := g.instantiateHostModules(ctx, g.rt); err != nil {
		return err
	}
	g.modCfg = g.moduleConfig(code)
	g.initReq, err = json.Marshal(abi.InitRequest{
		ABI: abi.Version, Plugin: g.spec.Name, Version: g.spec.Version, Capabilities: g.spec.Capabilities,
	})
	if err != nil {
		return fmt.Errorf("plugins: encode init request: %w", err)
	}
	warmStart := time.Now()
	for i := 0; i < g.limits.warm(); i++ {
		g.slots <- struct{}{}
		inst, err := g.newInstance(ctx, i == 0)
		if err != nil {
			<-g.slots
			g.closeIdle(ctx)
			return err
		}
		g.idle <- inst
	}
	g.warm = time.Since(warmStart)
	return nil
}

// moduleConfig is the per-instance configuration: anonymous (so the module
// can be instantiated many times), no files, arguments or environment,
// and real clock and crypto randomness only when granted; otherwise WASI
// sees wazero's deterministic stand-ins.
func (g *generation) moduleConfig(code wazero.CompiledModule) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	if _, ok := code.ExportedFunctions()[abi.ExportInitialize]; ok {
		cfg = cfg.WithStartFunctions(abi.ExportInitialize)
	}
	if g.spec.granted(abi.CapClock) {
		cfg = cfg.WithSysWalltime().WithSysNanotime()
	}
	if g.spec.granted(abi.CapRandom) {
		cfg = cfg.WithRandSource(rand.Reader)
	}
	return cfg
}

// serves reports whether the generation serves hook h.
func (g *generation) serves(h abi.Hook) bool {
	i := hookIndex(h)
	return i >= 0 && g.hooks[i]
}

// enter registers a call on the generation. It fails once the generation
// is retired, and the caller then takes the newer one.
func (g *generation) enter() bool {
	g.inflight.Add(1)
	if g.retired.Load() {
		g.exit()
		return false
	}
	return true
}

// exit ends a call registered by enter.
func (g *generation) exit() {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.drainOnce.Do(func() { close(g.drained) })
	}
}

// retire stops new calls, waits up to timeout for running ones, then
// closes every instance and the runtime, releasing their memory.
func (g *generation) retire(ctx context.Context, timeout time.Duration) {
	g.retired.Store(true)
	if g.inflight.Load() == 0 {
		g.drainOnce.Do(func() { close(g.drained) })
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.drained:
	case <-t.C:
		g.log.Warn("plugin generation did not drain in time; closing it with calls in flight",
			"in_flight", g.inflight.Load(), "timeout", timeout)
	}
	g.close(ctx)
}

// close releases everything the generation holds.
func (g *generation) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	g.closeIdle(ctx)
	if err := g.rt.Close(ctx); err != nil {
		g.log.Warn("closing plugin runtime", "err", err)
	}
}

// closeIdle closes every idle instance.
func (g *generation) closeIdle(ctx context.Context) {
	for {
		select {
		case inst := <-g.idle:
			g.discard(ctx, inst)
			<-g.slots
		default:
			return
		}
	}
}

// acquire returns an idle instance, creating one while the pool has room,
// or waits for one to be released.
func (g *generation) acquire(ctx context.Context) (*instance, error) {
	select {
	case inst := <-g.idle:
		return inst, nil
	default:
	}
	select {
	case inst := <-g.idle:
		return inst, nil
	case g.slots <- struct{}{}:
		inst, err := g.newInstance(ctx, false)
		if err != nil {
			<-g.slots
			return nil, err
		}
		return inst, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for an instance: %w", ErrCanceled, ctx.Err())
	}
}

// release returns a healthy instance to the pool or discards a bad one.
func (g *generation) release(ctx context.Context, inst *instance, keep bool) {
	if keep {
		g.idle <- inst
		return
	}
	g.discard(ctx, inst)
	<-g.slots
}

// discard closes an instance and accounts for it.
func (g *generation) discard(ctx context.Context, inst *instance) {
	_ = inst.mod.Close(context.WithoutCancel(ctx))
	g.mem.Add(-inst.memBytes)
	g.live.Add(-1)
	liveInstances.Add(-1)
	g.state.stats.discarded.Add(1)
}

// errString is the failure text of a plugin's init, for load errors.
func errString(err error) string {
	var ce *CallError
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	return err.Error()
}
