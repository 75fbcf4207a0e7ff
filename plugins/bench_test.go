package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
)

// benchManager is a Manager with production settings (DefaultConfig) on
// the shared compilation cache.
func benchManager(b *testing.B) *Manager {
	m, err := NewManager(DefaultConfig().WithCacheDir(cacheDir), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	return m
}

var roomPolicyConfig = map[string]any{
	"rooms": []string{"team-*"}, "max_participants": 50,
	"roles": map[string]any{
		"host":        map[string]any{"publish": []string{"audio", "video", "data"}, "max_bitrate": 2_500_000},
		"participant": map[string]any{"publish": []string{"audio", "video"}, "max_bitrate": 1_000_000},
	},
}

// latencies runs fn b.N times and reports p50 and p99 in microseconds.
func latencies(b *testing.B, fn func() error) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
}

// BenchmarkJoinDecision is one join decision by the stock roompolicy
// plugin (a Go guest, JSON in and out) through Manager.Decide, with the
// production limits (100 ms deadline enforced by wazero) and a warm pool.
func BenchmarkJoinDecision(b *testing.B) {
	m := benchManager(b)
	cfg, _ := json.Marshal(roomPolicyConfig)
	s, _ := StockSpec("roompolicy", "bench", goPlugin(b, "stock/roompolicy"), cfg)
	load(b, m, s)
	req := core.PolicyRequest{Action: core.ActionJoin, Room: "team-red", ParticipantID: "PA_abcdefghijklmnop", Participants: 7,
		Claims: core.Claims{Identity: "alice", Name: "Alice", Room: "team-red", Grants: core.AllGrants,
			Metadata: `{"role":"host"}`, ExpiresAt: time.Now().Add(time.Hour)}}
	latencies(b, func() error {
		d, err := m.Decide(context.Background(), req)
		if err == nil && !d.Allow {
			err = fmt.Errorf("denied: %+v", d)
		}
		return err
	})
}

// BenchmarkAuthHS256 is one token verification by the stock jwtauth
// plugin.
func BenchmarkAuthHS256(b *testing.B) {
	m := benchManager(b)
	s, _ := StockSpec("jwtauth", "bench", goPlugin(b, "stock/jwtauth"), []byte(`{"hs256_secret":"`+devSecret+`"}`))
	load(b, m, s)
	tok, _ := devtoken.Mint([]byte(devSecret), core.Claims{Identity: "alice", Room: "r", Grants: core.AllGrants}, time.Hour, time.Now())
	latencies(b, func() error {
		_, err := m.Authenticate(context.Background(), tok)
		return err
	})
}

// BenchmarkWarmup reloads roompolicy from the compilation cache with a
// pool of 4 warm instances and reports the warm-up time per instance, the
// whole load, and the linear memory of one instance. Run it with a small
// -benchtime such as 20x.
func BenchmarkWarmup(b *testing.B) {
	m := benchManager(b)
	cfg, _ := json.Marshal(roomPolicyConfig)
	s, _ := StockSpec("roompolicy", "bench", goPlugin(b, "stock/roompolicy"), cfg)
	load(b, m, s) // compiles once (or reads the cache)
	var warm, loadTime time.Duration
	var mem int64
	b.ResetTimer()
	for i := range b.N {
		s.Version = fmt.Sprint(i)
		if err := m.Replace(context.Background(), s); err != nil {
			b.Fatal(err)
		}
		st, _ := m.Stats("roompolicy")
		warm += st.WarmupTime / time.Duration(st.InstancesLive)
		loadTime += st.LoadTime
		mem = st.MemoryBytes / st.InstancesLive
	}
	b.ReportMetric(float64(warm.Microseconds())/float64(b.N)/1e3, "warmup-ms/instance")
	b.ReportMetric(float64(loadTime.Microseconds())/float64(b.N)/1e3, "load-ms")
	b.ReportMetric(float64(mem)/(1<<20), "MiB/instance")
}

// BenchmarkEmptyCall is the floor: a WAT plugin that answers a constant
// decision after a byte scan of its input.
func BenchmarkEmptyCall(b *testing.B) {
	m := benchManager(b)
	load(b, m, Spec{Name: "wat", Module: watPlugin(b, "policy"), Capabilities: []abi.Capability{abi.CapLog},
		Limits: Limits{LogRate: 1e-9}})
	in := joinInput(b, "lobby")
	latencies(b, func() error {
		_, err := m.Call(context.Background(), "wat", abi.HookJoin, in)
		return err
	})
}
