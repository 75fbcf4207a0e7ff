package plugins

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core"
)

// hammer calls the good plugin's join hook from two goroutines until stop
// is closed. It returns once a few calls have succeeded, with a function
// that waits for the goroutines after stop and reports how many calls
// succeeded and the first failure.
func hammer(t *testing.T, m *Manager, stop <-chan struct{}) func() (int64, error) {
	var ok atomic.Int64
	defer func() {
		for deadline := time.Now().Add(10 * time.Second); ok.Load() < 3 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}()
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	in := joinInput(t, "steady")
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := m.Call(context.Background(), "good", abi.HookJoin, in)
				if err == nil {
					var d abi.Decision
					if d, err = decodeDecision(res.Output); err == nil && !d.Allow {
						err = errors.New("good plugin denied")
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				ok.Add(1)
			}
		}()
	}
	return func() (int64, error) { wg.Wait(); return ok.Load(), firstErr }
}

func TestHostileCalls(t *testing.T) {
	cases := []struct {
		name    string
		spec    func(t *testing.T) Spec
		room    string
		kind    error
		discard bool
	}{
		{"wat loop", deadline(watSpec("loop")), "r", ErrTimeout, true},
		{"wat memory bomb", bomb(watSpec("bomb"), 64), "r", ErrOutOfMemory, true},
		{"wat trap", watSpec("trap"), "r", ErrTrap, true},
		{"wat garbage", watSpec("garbage"), "r", ErrBadOutput, true},
		{"wat huge output", watSpec("huge"), "r", ErrBadOutput, true},
		{"go loop", deadline(goBad), "loop", ErrTimeout, true},
		{"go memory bomb", bomb(goBad, 192), "bomb", ErrOutOfMemory, true},
		{"go exit", goBad, "exit", ErrTrap, true},
		{"go panic", goBad, "panic", ErrPluginFailed, false},
		{"go garbage", goBad, "garbage", ErrBadOutput, true},
		{"go huge output", goBad, "huge", ErrBadOutput, true},
	}
	m, _ := newManager(t)
	load(t, m, testplug(t, "good", "v1", nil))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec(t)
			load(t, m, spec)
			defer func() {
				if err := m.Unload(context.Background(), "bad"); err != nil {
					t.Error(err)
				}
			}()
			stop := make(chan struct{})
			wait := hammer(t, m, stop)
			before, _ := m.Stats("bad")
			start := time.Now()
			_, err := m.Call(context.Background(), "bad", abi.HookJoin, joinInput(t, tc.room))
			elapsed := time.Since(start)
			mid, _ := m.Stats("good")
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if st, _ := m.Stats("good"); st.Calls >= mid.Calls+3 {
					break
				}
			}
			close(stop)
			good, goodErr := wait()
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if elapsed > 5*time.Second {
				t.Errorf("the call took %v", elapsed)
			}
			if goodErr != nil || good == 0 {
				t.Fatalf("good plugin: %d calls succeeded, first error %v", good, goodErr)
			}
			after, _ := m.Stats("bad")
			if discarded := after.InstancesDiscarded - before.InstancesDiscarded; (discarded == 1) != tc.discard {
				t.Errorf("discarded %d instances, want discard=%v", discarded, tc.discard)
			}
			t.Logf("%v after %v (good plugin served %d calls meanwhile)", err, elapsed.Round(time.Millisecond), good)
			if spec.Name == "bad" && strings.HasPrefix(tc.name, "go") {
				// The plugin still serves once a fresh instance replaces the bad one.
				if _, err := m.Call(context.Background(), "bad", abi.HookJoin, joinInput(t, "fine")); err != nil {
					t.Fatalf("after recovery: %v", err)
				}
			}
		})
	}
}

func watSpec(name string) func(t *testing.T) Spec {
	return func(t *testing.T) Spec {
		return Spec{Name: "bad", Version: name, Module: watPlugin(t, name)}
	}
}

func goBad(t *testing.T) Spec { return testplug(t, "bad", "v1", nil) }

// deadline gives a looping plugin a short call deadline.
func deadline(spec func(*testing.T) Spec) func(*testing.T) Spec {
	return func(t *testing.T) Spec {
		s := spec(t)
		s.Limits.CallTimeout = 250 * time.Millisecond
		return s
	}
}

// bomb gives a memory bomb a small memory cap and a generous deadline:
// growing memory is slow under the race detector, and the point is the cap.
func bomb(spec func(*testing.T) Spec, pages uint32) func(*testing.T) Spec {
	return func(t *testing.T) Spec {
		s := spec(t)
		s.Limits.MemoryPages, s.Limits.CallTimeout = pages, 20*time.Second
		return s
	}
}

func TestHostileThroughChainFailsClosed(t *testing.T) {
	m, _ := newManager(t)
	load(t, m, testplug(t, "good", "v1", nil))
	load(t, m, Spec{Name: "trap", Module: watPlugin(t, "trap"), Order: 5})
	d, err := m.Decide(context.Background(), core.PolicyRequest{Action: core.ActionJoin, Room: "r", Claims: core.Claims{Identity: "a"}})
	if err == nil || d.Allow || d.Code != core.CodeUnavailable || !errors.Is(err, ErrTrap) || core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("decision %+v, err %v", d, err)
	}
}

func TestLoadRejects(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	cases := []struct {
		name string
		spec Spec
		kind error
		want []string
	}{
		{"ungranted capability", Spec{Name: "x", Module: watPlugin(t, "ungranted"), Capabilities: []abi.Capability{abi.CapLog}},
			ErrCapabilityNotGranted, []string{"parley_kv_v1.kv_get", `capability "kv"`}},
		{"wrong ABI major", Spec{Name: "x", Module: watPlugin(t, "abi2")}, ErrABIMismatch,
			[]string{"parley_v2.input_len", "ABI v2", "speaks v1"}},
		{"command module", Spec{Name: "x", Module: watPlugin(t, "command")}, ErrBadExport, []string{"_start", "reactor"}},
		{"not wasm", Spec{Name: "x", Module: []byte("hello")}, ErrCompile, nil},
		{"checksum", Spec{Name: "x", Module: watPlugin(t, "trap"), SHA256: strings.Repeat("0", 64)}, ErrChecksum, nil},
		{"bad name", Spec{Name: "Bad Name", Module: watPlugin(t, "trap")}, ErrInvalidConfig, nil},
		{"unknown capability", Spec{Name: "x", Module: watPlugin(t, "trap"), Capabilities: []abi.Capability{"net"}}, ErrInvalidConfig, nil},
		{"init failure", testplug(t, "x", "v1", map[string]any{"mode": "init_fail"}), ErrInit, []string{"asked to fail init"}},
		{"memory cap below the module's", func() Spec { s := testplug(t, "x", "v1", nil); s.Limits.MemoryPages = 8; return s }(),
			ErrCompile, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Load(ctx, tc.spec)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if len(m.List()) != 0 {
				t.Fatalf("a failed load left %v", m.List())
			}
		})
	}
	// Granting the capability makes the same module load.
	if err := m.Load(ctx, Spec{Name: "x", Module: watPlugin(t, "ungranted"), Capabilities: []abi.Capability{abi.CapKV}}); err != nil {
		t.Fatal(err)
	}
}

func TestCrashingPluginIsBackedOff(t *testing.T) {
	logs := &logSink{}
	cfg := DefaultConfig().WithCacheDir(cacheDir).WithDefaults(testLimits())
	cfg.Backoff = Backoff{Threshold: 3, Min: 300 * time.Millisecond, Max: time.Second}
	m, err := NewManager(cfg, newTestLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	load(t, m, Spec{Name: "trap", Module: watPlugin(t, "trap")})
	ctx := context.Background()
	in := joinInput(t, "r")
	for i := 0; i < 3; i++ {
		if _, err := m.Call(ctx, "trap", abi.HookJoin, in); !errors.Is(err, ErrTrap) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	start := time.Now()
	if _, err := m.Call(ctx, "trap", abi.HookJoin, in); !errors.Is(err, ErrBackedOff) {
		t.Fatalf("4th call: %v", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("a backed-off call took %v", d)
	}
	st, _ := m.Stats("trap")
	if st.BackoffsEntered != 1 || st.BackedOffCalls != 1 || st.Traps != 3 || st.BackedOffUntil.IsZero() || st.ConsecutiveFailures != 3 {
		t.Fatalf("stats %+v", st)
	}
	if !logs.contains("backed off") {
		t.Fatal("back-off not logged")
	}
	time.Sleep(350 * time.Millisecond)
	if _, err := m.Call(ctx, "trap", abi.HookJoin, in); !errors.Is(err, ErrTrap) {
		t.Fatalf("probe after back-off: %v", err)
	}
	if st, _ := m.Stats("trap"); st.BackoffsEntered != 2 {
		t.Fatalf("backoffs %d after a failed probe", st.BackoffsEntered)
	}
	// Replacing the plugin starts it healthy.
	if err := m.Replace(ctx, Spec{Name: "trap", Version: "v2", Module: watPlugin(t, "trap")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(ctx, "trap", abi.HookJoin, in); !errors.Is(err, ErrTrap) {
		t.Fatalf("after replace: %v", err)
	}
}
