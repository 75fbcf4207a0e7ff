package plugins

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are a plugin's counters since it was first loaded (they survive
// Replace and Unload) and the state of its current generation. Manager.Stats
// and Manager.List return them; every counter only grows, so they export
// as Prometheus counters, and Hooks as one histogram per hook:
//
//	for _, h := range st.Hooks {
//		// parley_plugin_call_duration_seconds{plugin, hook}: h.Latency
//		// parley_plugin_call_failures_total{plugin, hook, kind}: h.Failures
//	}
type Stats struct {
	Calls        uint64 // hook calls run (not counting back-off rejections)
	Failures     uint64 // calls that failed, of any kind below
	Timeouts     uint64 // stopped at the call deadline
	Traps        uint64 // trapped or exited
	OutOfMemory  uint64 // failed with memory at the cap
	BadOutputs   uint64 // output missing, malformed or too large
	PluginErrors uint64 // the hook reported failure itself
	Canceled     uint64 // the caller gave up

	Denials uint64 // decisions that denied

	InstancesCreated   uint64
	InstancesDiscarded uint64
	InstancesLive      int64
	MemoryBytes        int64 // linear memory of live instances

	BackoffsEntered     uint64    // times the plugin was backed off
	BackedOffCalls      uint64    // calls refused while backed off
	BackedOffUntil      time.Time // zero when not backed off
	ConsecutiveFailures int

	LogLines      uint64
	LogsDropped   uint64 // over the log rate
	Webhooks      uint64 // handed to the webhook sink or returned by PresenceWebhooks
	WebhookErrors uint64 // refused by the sink

	Reloads    uint64        // generations loaded after the first
	Generation uint64        // current generation id
	LoadTime   time.Duration // compile + checks + warm-up of the current generation
	WarmupTime time.Duration // instantiating the warm pool of the current generation
	CallTime   time.Duration // total time in calls

	// Hooks are the call latency histogram and failures by kind of each
	// hook the plugin serves or was called on, in abi.Hooks order (init
	// excluded). Latency is the time a call ran in the plugin, from
	// taking an instance to its output being validated; waiting for an
	// instance is not counted.
	Hooks []HookStats
}

// counters are the atomic backing of Stats.
type counters struct {
	calls, failures, timeouts, traps, ooms, badOutputs, pluginErrors, canceled atomic.Uint64
	denials, created, discarded, backoffs, backedOff                           atomic.Uint64
	logLines, logsDropped, webhooks, webhookErrors, reloads, callNanos         atomic.Uint64

	hooks [numHooks]hookCounters // indexed like abi.Hooks
}

// pluginState is what outlives a generation: counters and health.
type pluginState struct {
	name    string
	log     *slog.Logger
	backoff Backoff
	stats   counters

	mu          sync.Mutex
	consecutive int
	delay       time.Duration
	until       time.Time
}

func newPluginState(name string, b Backoff, log *slog.Logger) *pluginState {
	return &pluginState{name: name, backoff: b, log: log.With("plugin", name)}
}

// admit refuses calls while the plugin is backed off.
func (s *pluginState) admit(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.until) {
		s.stats.backedOff.Add(1)
		return false
	}
	return true
}

// resetHealth forgets past failures; a new generation starts healthy.
func (s *pluginState) resetHealth() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consecutive, s.delay, s.until = 0, 0, time.Time{}
}

// refused counts a call to hook i refused without running (backed off,
// input too large).
func (s *pluginState) refused(i int, err error) {
	if i >= 0 {
		s.stats.hooks[i].fail(err)
	}
}

// record counts a finished call to hook i that ran for d, or failed to get
// an instance when ran is false, and updates health.
func (s *pluginState) record(i int, err error, d time.Duration, ran bool) {
	s.stats.calls.Add(1)
	s.stats.callNanos.Add(uint64(d))
	if i >= 0 && ran {
		s.stats.hooks[i].observe(d)
	}
	if err == nil {
		s.mu.Lock()
		s.consecutive, s.delay = 0, 0
		s.mu.Unlock()
		return
	}
	if i >= 0 {
		s.stats.hooks[i].fail(err)
	}
	s.stats.failures.Add(1)
	switch {
	case errors.Is(err, ErrTimeout):
		s.stats.timeouts.Add(1)
	case errors.Is(err, ErrOutOfMemory):
		s.stats.ooms.Add(1)
	case errors.Is(err, ErrTrap):
		s.stats.traps.Add(1)
	case errors.Is(err, ErrBadOutput):
		s.stats.badOutputs.Add(1)
	case errors.Is(err, ErrPluginFailed):
		s.stats.pluginErrors.Add(1)
	case errors.Is(err, ErrCanceled):
		s.stats.canceled.Add(1)
		return // the caller's doing, not the plugin's
	}
	s.failed(err)
}

// failed counts a failure against the plugin and backs it off once it
// reaches the threshold.
func (s *pluginState) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consecutive++
	if s.consecutive < s.backoff.Threshold {
		return
	}
	s.delay = min(max(2*s.delay, s.backoff.Min), s.backoff.Max)
	s.until = time.Now().Add(s.delay)
	s.stats.backoffs.Add(1)
	s.log.Warn("plugin backed off after repeated failures",
		"consecutive_failures", s.consecutive, "for", s.delay, "last_err", err)
}

// snapshot returns the counters and health as Stats; Hooks covers the
// hooks in served and those with anything recorded.
func (s *pluginState) snapshot(served hookSet) Stats {
	c := &s.stats
	st := Stats{
		Calls: c.calls.Load(), Failures: c.failures.Load(), Timeouts: c.timeouts.Load(),
		Traps: c.traps.Load(), OutOfMemory: c.ooms.Load(), BadOutputs: c.badOutputs.Load(),
		PluginErrors: c.pluginErrors.Load(), Canceled: c.canceled.Load(), Denials: c.denials.Load(),
		InstancesCreated: c.created.Load(), InstancesDiscarded: c.discarded.Load(),
		BackoffsEntered: c.backoffs.Load(), BackedOffCalls: c.backedOff.Load(),
		LogLines: c.logLines.Load(), LogsDropped: c.logsDropped.Load(),
		Webhooks: c.webhooks.Load(), WebhookErrors: c.webhookErrors.Load(),
		Reloads: c.reloads.Load(), CallTime: time.Duration(c.callNanos.Load()),
		Hooks: hookSnapshots(&c.hooks, served),
	}
	s.mu.Lock()
	st.ConsecutiveFailures = s.consecutive
	if time.Now().Before(s.until) {
		st.BackedOffUntil = s.until
	}
	s.mu.Unlock()
	return st
}

// rateLimiter is a token bucket.
type rateLimiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: max(burst, 1), tokens: max(burst, 1)}
}

// allow takes a token if there is one.
func (r *rateLimiter) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() {
		r.tokens = min(r.burst, r.tokens+now.Sub(r.last).Seconds()*r.rate)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}
