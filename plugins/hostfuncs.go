package plugins

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/parleyhq/parley/abi"
)

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc describes one function the host provides to plugins.
type hostFunc struct {
	cap     abi.Capability // "" for the core module
	name    string
	params  []api.ValueType
	results []api.ValueType
	impl    func(g *generation, ctx context.Context, mod api.Module, stack []uint64)
}

// hostFuncs is the host side of ABI v1, one entry per importable function.
var hostFuncs = []hostFunc{
	{"", abi.FuncInputLen, nil, []api.ValueType{i32}, (*generation).hostInputLen},
	{"", abi.FuncInputRead, []api.ValueType{i32, i32}, []api.ValueType{i32}, (*generation).hostInputRead},
	{"", abi.FuncOutputSet, []api.ValueType{i32, i32}, []api.ValueType{i32}, (*generation).hostOutputSet},
	{"", abi.FuncErrorSet, []api.ValueType{i32, i32}, []api.ValueType{i32}, (*generation).hostErrorSet},
	{abi.CapLog, abi.FuncLog, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, (*generation).hostLog},
	{abi.CapConfig, abi.FuncConfigLen, nil, []api.ValueType{i32}, (*generation).hostConfigLen},
	{abi.CapConfig, abi.FuncConfigRead, []api.ValueType{i32, i32}, []api.ValueType{i32}, (*generation).hostConfigRead},
	{abi.CapKV, abi.FuncKVGet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, (*generation).hostKVGet},
	{abi.CapKV, abi.FuncKVSet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, (*generation).hostKVSet},
	{abi.CapKV, abi.FuncKVDelete, []api.ValueType{i32, i32}, []api.ValueType{i32}, (*generation).hostKVDelete},
	{abi.CapKV, abi.FuncKVAdd, []api.ValueType{i32, i32, i64, i32}, []api.ValueType{i32}, (*generation).hostKVAdd},
	{abi.CapWebhook, abi.FuncWebhookSend, []api.ValueType{i32, i32}, []api.ValueType{i32}, (*generation).hostWebhookSend},
	{abi.CapClock, abi.FuncNowUnixNano, nil, []api.ValueType{i64}, (*generation).hostNow},
	{abi.CapClock, abi.FuncMonotonic, nil, []api.ValueType{i64}, (*generation).hostMonotonic},
	{abi.CapRandom, abi.FuncRandomFill, []api.ValueType{i32, i32}, []api.ValueType{i32}, (*generation).hostRandomFill},
}

// lookupHostFunc finds the host function a plugin imports.
func lookupHostFunc(c abi.Capability, name string) (hostFunc, bool) {
	for _, f := range hostFuncs {
		if f.cap == c && f.name == name {
			return f, true
		}
	}
	return hostFunc{}, false
}

// instantiateHostModules defines the core module and the modules of the
// granted capabilities in rt. Ungranted capabilities do not exist there.
func (g *generation) instantiateHostModules(ctx context.Context, rt wazero.Runtime) error {
	mods := map[abi.Capability]wazero.HostModuleBuilder{}
	for _, f := range hostFuncs {
		if f.cap != "" && !g.spec.granted(f.cap) {
			continue
		}
		b, ok := mods[f.cap]
		if !ok {
			b = rt.NewHostModuleBuilder(abi.ModuleName(string(f.cap), abi.Major))
			mods[f.cap] = b
		}
		impl := f.impl
		fn := api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) { impl(g, ctx, mod, stack) })
		b.NewFunctionBuilder().WithGoModuleFunction(fn, f.params, f.results).Export(f.name)
	}
	for c, b := range mods {
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("plugins: host module %s: %w", abi.ModuleName(string(c), abi.Major), err)
		}
	}
	return nil
}

// callKey carries the *callState of the running hook call in its context.
type callKey struct{}

func callFrom(ctx context.Context) *callState {
	cs, _ := ctx.Value(callKey{}).(*callState)
	return cs
}

// guestBytes returns a view of n bytes of guest memory at ptr.
func guestBytes(mod api.Module, ptr uint64, n uint64) ([]byte, int32) {
	ln := api.DecodeI32(n)
	if ln < 0 {
		return nil, abi.StatusInvalid
	}
	b, ok := mod.Memory().Read(api.DecodeU32(ptr), uint32(ln))
	if !ok {
		return nil, abi.StatusBounds
	}
	return b, abi.StatusOK
}

func ret(stack []uint64, st int32) { stack[0] = api.EncodeI32(st) }

func (g *generation) hostInputLen(ctx context.Context, _ api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil {
		ret(stack, abi.StatusUnavailable)
		return
	}
	ret(stack, int32(len(cs.input)))
}

func (g *generation) hostInputRead(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil {
		ret(stack, abi.StatusUnavailable)
		return
	}
	buf, st := guestBytes(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	ret(stack, int32(copy(buf, cs.input)))
}

func (g *generation) hostOutputSet(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil {
		ret(stack, abi.StatusUnavailable)
		return
	}
	if n := api.DecodeI32(stack[1]); n > int32(cs.maxOutput) {
		cs.fault = fmt.Sprintf("output of %d bytes exceeds the limit of %d", n, cs.maxOutput)
		ret(stack, abi.StatusTooLarge)
		return
	}
	b, st := guestBytes(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		cs.fault = fmt.Sprintf("output_set(%d, %d): %s", api.DecodeU32(stack[0]), api.DecodeI32(stack[1]), abi.StatusText(st))
		ret(stack, st)
		return
	}
	cs.output = append(cs.output[:0], b...)
	cs.outputSet = true
	ret(stack, abi.StatusOK)
}

func (g *generation) hostErrorSet(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil {
		ret(stack, abi.StatusUnavailable)
		return
	}
	b, st := guestBytes(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	cs.errMsg = truncate(string(b), abi.MaxErrorMessage)
	ret(stack, abi.StatusOK)
}

func (g *generation) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level := api.DecodeI32(stack[0])
	if level < abi.LevelDebug || level > abi.LevelError {
		ret(stack, abi.StatusInvalid)
		return
	}
	b, st := guestBytes(mod, stack[1], stack[2])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	if !g.logLimit.allow(time.Now()) {
		g.state.stats.logsDropped.Add(1)
		ret(stack, abi.StatusRateLimited)
		return
	}
	g.state.stats.logLines.Add(1)
	lvl := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}[level]
	g.log.Log(ctx, lvl, truncate(string(b), abi.MaxLogLine), "source", "plugin")
	ret(stack, abi.StatusOK)
}

func (g *generation) hostConfigLen(_ context.Context, _ api.Module, stack []uint64) {
	ret(stack, int32(len(g.spec.Config)))
}

func (g *generation) hostConfigRead(_ context.Context, mod api.Module, stack []uint64) {
	buf, st := guestBytes(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	ret(stack, int32(copy(buf, g.spec.Config)))
}

// kvKey reads and checks a kv key argument.
func kvKey(mod api.Module, ptr, n uint64) (string, int32) {
	if l := api.DecodeI32(n); l == 0 || l > abi.MaxKVKey {
		return "", abi.StatusTooLarge
	}
	b, st := guestBytes(mod, ptr, n)
	return string(b), st
}

func kvStatus(err error) int32 {
	switch {
	case err == nil:
		return abi.StatusOK
	case errors.Is(err, ErrKVQuota):
		return abi.StatusQuota
	case errors.Is(err, ErrKVTooLarge):
		return abi.StatusTooLarge
	case errors.Is(err, ErrKVNotCounter):
		return abi.StatusInvalid
	}
	return abi.StatusUnavailable
}

func (g *generation) hostKVGet(ctx context.Context, mod api.Module, stack []uint64) {
	key, st := kvKey(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	buf, st := guestBytes(mod, stack[2], stack[3])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	v, ok, err := g.host.kv.Get(ctx, g.spec.Name, key)
	switch {
	case err != nil:
		ret(stack, kvStatus(err))
	case !ok:
		ret(stack, abi.StatusNotFound)
	default:
		if len(v) <= len(buf) {
			copy(buf, v)
		}
		ret(stack, int32(len(v)))
	}
}

func (g *generation) hostKVSet(ctx context.Context, mod api.Module, stack []uint64) {
	key, st := kvKey(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	if api.DecodeI32(stack[3]) > abi.MaxKVValue {
		ret(stack, abi.StatusTooLarge)
		return
	}
	v, st := guestBytes(mod, stack[2], stack[3])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	ret(stack, kvStatus(g.host.kv.Set(ctx, g.spec.Name, key, append([]byte(nil), v...))))
}

func (g *generation) hostKVDelete(ctx context.Context, mod api.Module, stack []uint64) {
	key, st := kvKey(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	ret(stack, kvStatus(g.host.kv.Delete(ctx, g.spec.Name, key)))
}

func (g *generation) hostKVAdd(ctx context.Context, mod api.Module, stack []uint64) {
	key, st := kvKey(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	out := api.DecodeU32(stack[3])
	if _, ok := mod.Memory().Read(out, 8); !ok {
		ret(stack, abi.StatusBounds)
		return
	}
	v, err := g.host.kv.Add(ctx, g.spec.Name, key, int64(stack[2]))
	if err != nil {
		ret(stack, kvStatus(err))
		return
	}
	mod.Memory().Write(out, binary.LittleEndian.AppendUint64(nil, uint64(v)))
	ret(stack, abi.StatusOK)
}

func (g *generation) hostWebhookSend(ctx context.Context, mod api.Module, stack []uint64) {
	cs := callFrom(ctx)
	if cs == nil {
		ret(stack, abi.StatusUnavailable)
		return
	}
	if len(cs.webhooks) >= abi.MaxWebhooksPerCall {
		ret(stack, abi.StatusQuota)
		return
	}
	if api.DecodeI32(stack[1]) > abi.MaxWebhookRequest {
		ret(stack, abi.StatusTooLarge)
		return
	}
	b, st := guestBytes(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	req, err := decodeWebhook(b)
	if err == nil && !g.spec.webhookAllowed(req.URL) {
		err = fmt.Errorf("url %q is not in the plugin's webhook_allow list", req.URL)
	}
	if err != nil {
		g.log.Warn("plugin webhook refused", "err", err)
		ret(stack, abi.StatusInvalid)
		return
	}
	cs.webhooks = append(cs.webhooks, req)
	ret(stack, abi.StatusOK)
}

// processStart anchors monotonic_nano.
var processStart = time.Now()

func (g *generation) hostNow(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeI64(time.Now().UnixNano())
}

func (g *generation) hostMonotonic(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeI64(int64(time.Since(processStart)))
}

func (g *generation) hostRandomFill(_ context.Context, mod api.Module, stack []uint64) {
	if api.DecodeI32(stack[1]) > abi.MaxRandomFill {
		ret(stack, abi.StatusTooLarge)
		return
	}
	buf, st := guestBytes(mod, stack[0], stack[1])
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	if _, err := rand.Read(buf); err != nil {
		ret(stack, abi.StatusUnavailable)
		return
	}
	ret(stack, abi.StatusOK)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
