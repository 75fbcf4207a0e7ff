package plugins

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Config{
		DefaultConfig().WithDefaults(Limits{PoolSize: -1}),
		DefaultConfig().WithDefaults(Limits{MemoryPages: 70000}),
		DefaultConfig().WithDefaults(Limits{CallTimeout: -time.Second}),
		func() Config { c := DefaultConfig(); c.Backoff.Threshold = 0; return c }(),
		func() Config { c := DefaultConfig(); c.Backoff.Max = time.Millisecond; return c }(),
		func() Config { c := DefaultConfig(); c.DrainTimeout = 0; return c }(),
	}
	for i, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("config %d: %v", i, err)
		}
		if _, err := NewManager(c, nil); err == nil {
			t.Errorf("config %d: NewManager accepted it", i)
		}
	}
	l := Limits{PoolSize: 8}.Or(DefaultLimits())
	if l.PoolSize != 8 || l.MemoryPages != abi.DefaultMemoryPages || l.warm() != 8 {
		t.Fatalf("limits %+v", l)
	}
	if (Limits{PoolSize: 4, WarmInstances: 1}).warm() != 1 {
		t.Fatal("warm")
	}
}

// TestCloseStopsEverything checks that Close leaves no goroutine and no
// instance behind.
func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	live := LiveInstances()
	m, err := NewManager(DefaultConfig().WithCacheDir(cacheDir).WithDefaults(testLimits()), nil)
	if err != nil {
		t.Fatal(err)
	}
	load(t, m, testplug(t, "p", "v1", nil))
	if _, err := m.Call(context.Background(), "p", abi.HookJoin, joinInput(t, "r")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), "p", abi.HookJoin, joinInput(t, "r")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("call after close: %v", err)
	}
	if err := m.Load(context.Background(), testplug(t, "q", "v1", nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("load after close: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before || LiveInstances() != live {
		t.Fatalf("goroutines %d -> %d, instances %d -> %d", before, n, live, LiveInstances())
	}
}
