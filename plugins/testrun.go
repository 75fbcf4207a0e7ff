package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/parleyhq/parley/abi"
)

// TestOptions configure TestRun. The zero value grants every capability,
// uses the default limits and an in-memory compilation cache.
type TestOptions struct {
	Name         string           // default "plugin"
	Config       json.RawMessage  // the plugin's configuration
	Capabilities []abi.Capability // nil grants all
	Limits       Limits           // zero fields take DefaultLimits
	CacheDir     string           // compilation cache; "" for none
	Runs         int              // calls to make (latency is their median); default 1
	Logger       *slog.Logger     // the plugin's log lines; default discarded
}

// TestResult is what one hook did.
type TestResult struct {
	Hook        abi.Hook
	Output      json.RawMessage      // as the plugin set it
	Decision    *abi.Decision        // for join, publish, subscribe
	Auth        *abi.AuthResult      // for auth
	Webhooks    []abi.WebhookRequest // what the plugin asked to send (not sent)
	LoadTime    time.Duration        // compile, checks and instantiating one instance
	Latency     time.Duration        // median over the runs, first call excluded when Runs > 1
	FirstCall   time.Duration        // latency of the first call
	MemoryBytes int64                // the instance's linear memory after the calls
	Stats       Stats
}

// TestRun loads module alone and runs hook once (or opts.Runs times) with
// input, for `parley plugin test PLUGIN.wasm --hook join --input req.json`.
// Webhooks are collected, not delivered. A failing call returns its error
// with the result filled in as far as it got.
func TestRun(ctx context.Context, module []byte, hook abi.Hook, input []byte, opts TestOptions) (TestResult, error) {
	res := TestResult{Hook: hook}
	if opts.Name == "" {
		opts.Name = "plugin"
	}
	if opts.Capabilities == nil {
		opts.Capabilities = abi.Capabilities
	}
	opts.Limits.WarmInstances, opts.Limits.PoolSize = 1, 1
	cfg := DefaultConfig().WithCacheDir(opts.CacheDir)
	m, err := NewManager(cfg, opts.Logger, WithWebhookSink(discardSink{}))
	if err != nil {
		return res, err
	}
	defer m.Close(context.WithoutCancel(ctx))
	start := time.Now()
	err = m.Load(ctx, Spec{Name: opts.Name, Version: "test", Module: module, Config: opts.Config,
		Capabilities: opts.Capabilities, Limits: opts.Limits})
	res.LoadTime = time.Since(start)
	if err != nil {
		return res, err
	}
	lat := make([]time.Duration, 0, max(opts.Runs, 1))
	for i := 0; i < max(opts.Runs, 1); i++ {
		r, err := m.Call(ctx, opts.Name, hook, input)
		res.Output, res.Webhooks, res.MemoryBytes = r.Output, r.Webhooks, r.Memory
		res.Stats, _ = m.Stats(opts.Name)
		if err != nil {
			return res, err
		}
		lat = append(lat, r.Latency)
	}
	res.FirstCall = lat[0]
	if len(lat) > 1 {
		lat = lat[1:]
	}
	res.Latency = median(lat)
	return res, res.decode()
}

// decode fills in the typed view of the output.
func (r *TestResult) decode() error {
	switch r.Hook {
	case abi.HookJoin, abi.HookPublish, abi.HookSubscribe:
		d, err := decodeDecision(r.Output)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadOutput, err)
		}
		r.Decision = &d
	case abi.HookAuth:
		a, err := decodeAuthResult(r.Output, false)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadOutput, err)
		}
		r.Auth = &a
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// discardSink drops webhooks: TestRun reports them instead.
type discardSink struct{}

// Enqueue implements WebhookSink.
func (discardSink) Enqueue(context.Context, Webhook) error { return nil }
