package plugins

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/abi"
)

// latencyBounds are the upper bounds of the call latency histogram's
// buckets, from 10µs to 1s; a last, unbounded bucket counts slower calls.
var latencyBounds = [...]time.Duration{
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// LatencyBuckets returns the upper bounds of the buckets of every call
// latency Histogram: 10µs, 25µs, 50µs, 100µs, 250µs, 500µs, 1ms, 2.5ms,
// 5ms, 10ms, 25ms, 50ms, 100ms, 250ms and 1s.
func LatencyBuckets() []time.Duration { return slices.Clone(latencyBounds[:]) }

// FailureKind names a kind of failed hook call; the values are meant as
// metric label values.
type FailureKind string

// Failure kinds, one per sentinel error a call can fail with.
const (
	FailTimeout       FailureKind = "timeout"         // ErrTimeout
	FailTrap          FailureKind = "trap"            // ErrTrap
	FailOutOfMemory   FailureKind = "out_of_memory"   // ErrOutOfMemory
	FailBadOutput     FailureKind = "bad_output"      // ErrBadOutput
	FailPluginError   FailureKind = "plugin_error"    // ErrPluginFailed
	FailCanceled      FailureKind = "canceled"        // ErrCanceled
	FailBackedOff     FailureKind = "backed_off"      // ErrBackedOff: refused without running
	FailInputTooLarge FailureKind = "input_too_large" // ErrInputTooLarge: refused without running
	FailInit          FailureKind = "init"            // ErrInit: no instance could be made
	FailOther         FailureKind = "other"           // anything else
)

// FailureKinds lists every FailureKind.
var FailureKinds = [...]FailureKind{FailTimeout, FailOutOfMemory, FailTrap, FailBadOutput, FailPluginError,
	FailCanceled, FailBackedOff, FailInputTooLarge, FailInit, FailOther}

// failureErrors are the sentinels of FailureKinds, in the same order
// (out of memory before trap, should an error match both); FailOther has
// none.
var failureErrors = [len(FailureKinds) - 1]error{ErrTimeout, ErrOutOfMemory, ErrTrap, ErrBadOutput,
	ErrPluginFailed, ErrCanceled, ErrBackedOff, ErrInputTooLarge, ErrInit}

// KindOf returns the FailureKind of an error from a hook call: "" for nil,
// FailOther for an error of no known kind.
func KindOf(err error) FailureKind {
	if err == nil {
		return ""
	}
	return FailureKinds[failureIndex(err)]
}

// failureIndex returns the index in FailureKinds of err's kind.
func failureIndex(err error) int {
	for i, e := range failureErrors {
		if errors.Is(err, e) {
			return i
		}
	}
	return len(FailureKinds) - 1
}

// HookStats are one hook's call latency and failures for one plugin.
type HookStats struct {
	Hook    abi.Hook
	Latency Histogram // calls that ran, successful or not
	// Failures counts failed calls by kind; kinds that never happened are
	// absent. Calls refused without running (FailBackedOff,
	// FailInputTooLarge) count here but not in Latency.
	Failures map[FailureKind]uint64
}

// Histogram is a latency histogram in the Prometheus convention: Counts[i]
// is the number of observations at most Bounds[i] (cumulative), Count
// counts all of them (the +Inf bucket) and Sum adds them up.
type Histogram struct {
	Bounds []time.Duration // LatencyBuckets
	Counts []uint64        // cumulative, one per bound
	Count  uint64
	Sum    time.Duration
}

// hookCounters are the atomic backing of a HookStats. Recording touches
// only atomics: it never locks or allocates.
type hookCounters struct {
	buckets  [len(latencyBounds) + 1]atomic.Uint64 // not cumulative; the last is +Inf
	sumNanos atomic.Uint64
	failures [len(FailureKinds)]atomic.Uint64
}

// observe adds a call's latency.
func (c *hookCounters) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	c.buckets[i].Add(1)
	c.sumNanos.Add(uint64(max(d, 0)))
}

// fail counts a failure of err's kind.
func (c *hookCounters) fail(err error) { c.failures[failureIndex(err)].Add(1) }

// active reports whether anything was recorded.
func (c *hookCounters) active() bool {
	for i := range c.buckets {
		if c.buckets[i].Load() > 0 {
			return true
		}
	}
	for i := range c.failures {
		if c.failures[i].Load() > 0 {
			return true
		}
	}
	return false
}

// snapshot returns the counters as HookStats. Count is the sum of the
// buckets, so it is never below the last cumulative count even while
// calls are recorded concurrently.
func (c *hookCounters) snapshot(h abi.Hook) HookStats {
	hs := HookStats{Hook: h, Latency: Histogram{Bounds: LatencyBuckets(), Counts: make([]uint64, len(latencyBounds)),
		Sum: time.Duration(c.sumNanos.Load())}}
	var n uint64
	for i := range c.buckets {
		n += c.buckets[i].Load()
		if i < len(latencyBounds) {
			hs.Latency.Counts[i] = n
		}
	}
	hs.Latency.Count = n
	for i := range c.failures {
		if v := c.failures[i].Load(); v > 0 {
			if hs.Failures == nil {
				hs.Failures = map[FailureKind]uint64{}
			}
			hs.Failures[FailureKinds[i]] = v
		}
	}
	return hs
}

// hookSnapshots returns the HookStats of the hooks in served and of those
// with anything recorded, in abi.Hooks order; init is left out (its time
// is part of LoadTime).
func hookSnapshots(cs *[numHooks]hookCounters, served hookSet) []HookStats {
	var out []HookStats
	for i, h := range abi.Hooks {
		if h == abi.HookInit || !served[i] && !cs[i].active() {
			continue
		}
		out = append(out, cs[i].snapshot(h))
	}
	return out
}
