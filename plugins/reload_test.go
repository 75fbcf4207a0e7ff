package plugins

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/abi"
)

// TestReloadUnderLoad replaces a plugin several times while workers make
// join decisions: no decision may fail, and each must be wholly from one
// generation (the plugin echoes its configured version, the host tags the
// step with the version of the generation that ran it).
func TestReloadUnderLoad(t *testing.T) {
	m, _ := newManager(t)
	spec := testplug(t, "p", "v0", nil)
	spec.Limits.PoolSize = 4
	load(t, m, spec)
	ctx := context.Background()
	in := abi.JoinRequest{Room: "r", Claims: abi.Claims{Identity: "alice"}}
	var decisions, failures atomic.Int64
	seen := sync.Map{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := m.Evaluate(ctx, abi.HookJoin, in)
				switch {
				case err != nil || !v.Decision.Allow || len(v.Steps) != 1:
					failures.Add(1)
					t.Errorf("decision %+v: %v", v, err)
				case v.Decision.Metadata == nil || *v.Decision.Metadata != v.Steps[0].Version:
					failures.Add(1)
					t.Errorf("torn decision: plugin said %v, host ran %s", v.Decision.Metadata, v.Steps[0].Version)
				default:
					seen.Store(v.Steps[0].Version, true)
				}
				decisions.Add(1)
			}
		}()
	}
	const reloads = 6
	for i := 1; i <= reloads; i++ {
		for target := decisions.Load() + 500; decisions.Load() < target; {
			time.Sleep(time.Millisecond)
		}
		next := testplug(t, "p", fmt.Sprintf("v%d", i), nil)
		next.Limits.PoolSize = 4
		if err := m.Replace(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	for target := decisions.Load() + 500; decisions.Load() < target; {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	versions := 0
	seen.Range(func(any, any) bool { versions++; return true })
	t.Logf("%d decisions, %d failed, %d versions seen", decisions.Load(), failures.Load(), versions)
	if failures.Load() != 0 || decisions.Load() < 3000 || versions != reloads+1 {
		t.Fatalf("%d decisions, %d failures, %d of %d versions", decisions.Load(), failures.Load(), versions, reloads+1)
	}
	if st, _ := m.Stats("p"); st.Reloads != reloads || st.InstancesLive != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestReloadReleasesMemory reloads 100 times: the old generations'
// instances must be gone and the heap must not grow.
func TestReloadReleasesMemory(t *testing.T) {
	m, _ := newManager(t)
	ctx := context.Background()
	spec := func(i int) Spec {
		s := testplug(t, "p", fmt.Sprintf("v%d", i), nil)
		s.Limits.PoolSize, s.Limits.WarmInstances = 1, 1
		return s
	}
	load(t, m, spec(0))
	for i := 1; i <= 3; i++ { // reach a steady state first
		if err := m.Replace(ctx, spec(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := heapInUse()
	liveBefore := LiveInstances()
	for i := 4; i <= 103; i++ {
		if err := m.Replace(ctx, spec(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Call(ctx, "p", abi.HookJoin, joinInput(t, "r")); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInUse()
	t.Logf("heap in use %d MiB before, %d MiB after 100 reloads; %d live instances", before>>20, after>>20, LiveInstances())
	if LiveInstances() != liveBefore {
		t.Fatalf("live instances %d, was %d", LiveInstances(), liveBefore)
	}
	if after > before+16<<20 {
		t.Fatalf("heap grew from %d to %d bytes over 100 reloads", before, after)
	}
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestCompilationCacheSurvivesRestart loads a Go plugin with a fresh
// cache directory, then again with a new Manager on the same directory:
// the second load finds the compiled code and writes nothing.
func TestCompilationCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	spec := testplug(t, "p", "v1", nil)
	loadOnce := func() time.Duration {
		m, err := NewManager(DefaultConfig().WithCacheDir(dir).WithDefaults(testLimits()), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		start := time.Now()
		load(t, m, spec)
		return time.Since(start)
	}
	cold := loadOnce()
	files := cacheFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("the first load wrote no cache file")
	}
	warm := loadOnce()
	again := cacheFiles(t, dir)
	t.Logf("cold load %v, after restart %v; %d cache files", cold, warm, len(files))
	if len(again) != len(files) {
		t.Fatalf("cache files %d -> %d: the restart recompiled", len(files), len(again))
	}
	for f, mod := range files {
		if !again[f].Equal(mod) {
			t.Fatalf("cache file %s was rewritten", f)
		}
	}
	if warm > cold/2 {
		t.Errorf("the restart took %v, the cold load %v", warm, cold)
	}
}

func cacheFiles(t *testing.T, dir string) map[string]time.Time {
	files := map[string]time.Time{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files[p] = info.ModTime()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
