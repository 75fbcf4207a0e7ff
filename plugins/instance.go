package plugins

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/parleyhq/parley/abi"
)

// instance is one instantiated module. It runs one call at a time: the
// pool hands it to exactly one caller.
type instance struct {
	mod      api.Module
	fns      [numHooks]api.Function
	stack    [1]uint64
	out      *tailWriter // the guest's stdout and stderr, last bytes only
	memBytes int64
}

// callState is what host functions see of the running call.
type callState struct {
	hook      abi.Hook
	input     []byte
	maxOutput int
	output    []byte
	outputSet bool
	errMsg    string
	fault     string // a protocol violation by the guest; fails the call
	webhooks  []abi.WebhookRequest
}

// CallError describes a failed hook call. Kind is one of the package's
// sentinel errors (ErrTimeout, ErrTrap, ErrOutOfMemory, ErrBadOutput,
// ErrPluginFailed, ErrBackedOff ...), and errors.Is matches it.
type CallError struct {
	Plugin  string
	Version string
	Hook    abi.Hook
	Kind    error
	// Message is the plugin's own message (error_set) or the trap.
	Message string
	// Output is the tail of what the instance wrote to stdout/stderr,
	// such as a Go panic's trace.
	Output string
}

// Error implements error.
func (e *CallError) Error() string {
	s := fmt.Sprintf("plugin %s (%s) %s: %v", e.Plugin, e.Version, e.Hook, e.Kind)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns Kind.
func (e *CallError) Unwrap() error { return e.Kind }

// discards reports whether the instance that produced err must go.
func discards(err error) bool {
	return err != nil && !errors.Is(err, ErrPluginFailed)
}

// newInstance instantiates the module, runs its reactor initializer and
// init hook. The first instance of a generation may narrow its hooks.
func (g *generation) newInstance(ctx context.Context, first bool) (*instance, error) {
	ictx, cancel := context.WithTimeout(ctx, g.limits.InitTimeout)
	defer cancel()
	out := &tailWriter{max: 4096}
	mod, err := g.rt.InstantiateModule(ictx, g.code, g.modCfg.WithStdout(out).WithStderr(out))
	if err != nil {
		return nil, fmt.Errorf("%w: plugin %q: instantiate: %w%s", ErrInit, g.spec.Name, err, out.suffix())
	}
	inst := &instance{mod: mod, out: out}
	for i, h := range abi.Hooks {
		if g.hooks[i] {
			inst.fns[i] = mod.ExportedFunction(h.Export())
		}
	}
	g.live.Add(1)
	liveInstances.Add(1)
	g.state.stats.created.Add(1)
	g.updateMem(inst)
	if !g.hooks[hookIndex(abi.HookInit)] {
		return inst, nil
	}
	cs, err := g.invoke(ctx, inst, abi.HookInit, g.initReq, g.limits.InitTimeout)
	if err == nil && first && cs.outputSet {
		err = g.narrowHooks(cs.output)
	}
	if err != nil {
		g.discard(ctx, inst)
		return nil, fmt.Errorf("%w: plugin %q: %s", ErrInit, g.spec.Name, errString(err))
	}
	return inst, nil
}

// narrowHooks applies the hooks an init hook declared.
func (g *generation) narrowHooks(out []byte) error {
	res, err := decodeInitResult(out)
	if err != nil || len(res.Hooks) == 0 {
		return err
	}
	var hs hookSet
	hs[hookIndex(abi.HookInit)] = true
	for _, h := range res.Hooks {
		i := hookIndex(h)
		if i < 0 || !g.hooks[i] {
			return fmt.Errorf("init declares hook %q, which the plugin does not export", h)
		}
		hs[i] = true
	}
	g.hooks = hs
	return nil
}

// invoke runs one hook on inst under a deadline.
func (g *generation) invoke(ctx context.Context, inst *instance, h abi.Hook, input []byte, timeout time.Duration) (*callState, error) {
	cs := &callState{hook: h, input: input, maxOutput: g.limits.MaxOutput}
	fn := inst.fns[hookIndex(h)]
	if fn == nil {
		return cs, g.callError(h, ErrHookNotServed, "", inst)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	inst.stack[0] = 0
	err := fn.CallWithStack(context.WithValue(cctx, callKey{}, cs), inst.stack[:])
	g.updateMem(inst)
	switch {
	case err != nil:
		return cs, g.classify(ctx, cctx, inst, h, err)
	case cs.fault != "":
		return cs, g.callError(h, ErrBadOutput, cs.fault, inst)
	case api.DecodeI32(inst.stack[0]) != abi.HookOK:
		msg := cs.errMsg
		if msg == "" {
			msg = fmt.Sprintf("hook returned %d", api.DecodeI32(inst.stack[0]))
		}
		return cs, g.callError(h, ErrPluginFailed, msg, inst)
	}
	return cs, nil
}

// classify turns an error from wazero into a CallError of the right kind.
func (g *generation) classify(ctx, cctx context.Context, inst *instance, h abi.Hook, err error) error {
	if cctx.Err() != nil {
		if ctx.Err() != nil {
			return g.callError(h, ErrCanceled, ctx.Err().Error(), inst)
		}
		return g.callError(h, ErrTimeout, fmt.Sprintf("stopped after %v", g.limits.CallTimeout), inst)
	}
	msg := err.Error()
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		msg = fmt.Sprintf("exited with code %d", exit.ExitCode())
	}
	limit := int64(g.limits.MemoryPages) * abi.PageSize
	if strings.Contains(inst.out.String(), "out of memory") || inst.memBytes >= limit-limit/8 {
		return g.callError(h, ErrOutOfMemory, fmt.Sprintf("%s with %d of %d bytes of memory in use", msg, inst.memBytes, limit), inst)
	}
	return g.callError(h, ErrTrap, msg, inst)
}

func (g *generation) callError(h abi.Hook, kind error, msg string, inst *instance) *CallError {
	e := &CallError{Plugin: g.spec.Name, Version: g.spec.Version, Hook: h, Kind: kind, Message: msg}
	if inst != nil && discards(e) {
		e.Output = inst.out.String()
	}
	return e
}

// updateMem records the instance's current memory size.
func (g *generation) updateMem(inst *instance) {
	mem := inst.mod.Memory()
	if mem == nil {
		return
	}
	n := int64(mem.Size())
	g.mem.Add(n - inst.memBytes)
	inst.memBytes = n
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write implements io.Writer.
func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

// String returns what was kept.
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// suffix formats the kept output for an error message.
func (w *tailWriter) suffix() string {
	if s := strings.TrimSpace(w.String()); s != "" {
		return "; plugin output: " + s
	}
	return ""
}
