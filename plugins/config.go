package plugins

import (
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/abi"
)

// Limits bound what one plugin may use. A zero field means "the default":
// Spec.Limits fields left zero take Config.Defaults, and Config.Defaults
// fields left zero take DefaultLimits.
type Limits struct {
	// MemoryPages caps each instance's linear memory, in 64 KiB pages.
	MemoryPages uint32 `json:"memory_pages,omitempty" toml:"memory_pages"`
	// CallTimeout is the wall-clock deadline of one hook call. A call
	// past it is stopped and its instance discarded.
	CallTimeout time.Duration `json:"call_timeout,omitempty" toml:"call_timeout"`
	// InitTimeout bounds creating one instance: instantiation, the WASI
	// reactor initializer and the init hook.
	InitTimeout time.Duration `json:"init_timeout,omitempty" toml:"init_timeout"`
	// MaxInput and MaxOutput cap a hook call's input and output, in bytes.
	MaxInput  int `json:"max_input,omitempty" toml:"max_input"`
	MaxOutput int `json:"max_output,omitempty" toml:"max_output"`
	// PoolSize is how many instances may run calls at once.
	PoolSize int `json:"pool_size,omitempty" toml:"pool_size"`
	// WarmInstances are created when the plugin loads, before it serves a
	// call (at least 1, at most PoolSize); zero means PoolSize.
	WarmInstances int `json:"warm_instances,omitempty" toml:"warm_instances"`
	// LogRate is how many lines per second the plugin may log, with bursts
	// of twice that; lines over it are dropped and counted.
	LogRate float64 `json:"log_rate,omitempty" toml:"log_rate"`
}

// DefaultLimits are the limits a plugin gets when nothing overrides them.
func DefaultLimits() Limits {
	return Limits{
		MemoryPages: abi.DefaultMemoryPages,
		CallTimeout: abi.DefaultCallTimeoutMillis * time.Millisecond,
		InitTimeout: abi.DefaultInitTimeoutMillis * time.Millisecond,
		MaxInput:    abi.DefaultMaxInput,
		MaxOutput:   abi.DefaultMaxOutput,
		PoolSize:    abi.DefaultPoolSize,
		LogRate:     abi.DefaultLogRate,
	}
}

// Or returns l with every zero field taken from d.
func (l Limits) Or(d Limits) Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.CallTimeout == 0 {
		l.CallTimeout = d.CallTimeout
	}
	if l.InitTimeout == 0 {
		l.InitTimeout = d.InitTimeout
	}
	if l.MaxInput == 0 {
		l.MaxInput = d.MaxInput
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.PoolSize == 0 {
		l.PoolSize = d.PoolSize
	}
	if l.WarmInstances == 0 {
		l.WarmInstances = d.WarmInstances
	}
	if l.LogRate == 0 {
		l.LogRate = d.LogRate
	}
	return l
}

// warm returns how many instances to create at load.
func (l Limits) warm() int {
	if l.WarmInstances <= 0 || l.WarmInstances > l.PoolSize {
		return l.PoolSize
	}
	return l.WarmInstances
}

// Validate checks limits that have been completed with Or.
func (l Limits) Validate() error {
	var errs []error
	if l.MemoryPages < 1 || l.MemoryPages > 65536 {
		errs = append(errs, fmt.Errorf("memory_pages %d not in [1, 65536]", l.MemoryPages))
	}
	if l.CallTimeout <= 0 || l.InitTimeout <= 0 {
		errs = append(errs, fmt.Errorf("call_timeout %v and init_timeout %v must be positive", l.CallTimeout, l.InitTimeout))
	}
	if l.MaxInput < 1 || l.MaxOutput < 1 || l.MaxInput > 64<<20 || l.MaxOutput > 64<<20 {
		errs = append(errs, fmt.Errorf("max_input %d and max_output %d must be in [1, 64 MiB]", l.MaxInput, l.MaxOutput))
	}
	if l.PoolSize < 1 || l.PoolSize > 1024 {
		errs = append(errs, fmt.Errorf("pool_size %d not in [1, 1024]", l.PoolSize))
	}
	if l.WarmInstances < 0 {
		errs = append(errs, fmt.Errorf("warm_instances %d is negative", l.WarmInstances))
	}
	if l.LogRate < 0 {
		errs = append(errs, fmt.Errorf("log_rate %v is negative", l.LogRate))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: limits: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Backoff sets how a plugin that keeps failing is taken out of service:
// after Threshold consecutive failed calls it is skipped (its hooks fail
// closed, or open for presence) for Min, doubling on each further failure
// up to Max. One successful call ends it.
type Backoff struct {
	Threshold int           `json:"threshold,omitempty" toml:"threshold"`
	Min       time.Duration `json:"min,omitempty" toml:"min"`
	Max       time.Duration `json:"max,omitempty" toml:"max"`
}

// Config configures a Manager. It is a plain value: the Manager copies it
// and never changes it; build a new Manager (or Replace plugins) to change
// behaviour.
type Config struct {
	// CacheDir holds wazero's compilation cache, so a restart does not
	// recompile modules it has seen. Empty keeps compiled code in memory
	// only.
	CacheDir string `json:"cache_dir,omitempty" toml:"cache_dir"`
	// Defaults are the limits of plugins whose Spec leaves them zero.
	Defaults Limits `json:"defaults" toml:"defaults"`
	// Backoff applies to every plugin.
	Backoff Backoff `json:"backoff" toml:"backoff"`
	// DrainTimeout bounds how long a replaced or unloaded generation may
	// finish its calls before it is closed regardless.
	DrainTimeout time.Duration `json:"drain_timeout,omitempty" toml:"drain_timeout"`
}

// DefaultConfig returns the configuration used when nothing is set: no
// file cache, DefaultLimits, back-off after 5 failures for 1s up to 1m.
func DefaultConfig() Config {
	return Config{
		Defaults:     DefaultLimits(),
		Backoff:      Backoff{Threshold: 5, Min: time.Second, Max: time.Minute},
		DrainTimeout: 30 * time.Second,
	}
}

// WithCacheDir returns a copy of c with the compilation cache in dir.
func (c Config) WithCacheDir(dir string) Config {
	c.CacheDir = dir
	return c
}

// WithDefaults returns a copy of c whose default limits are l, completed
// from the current ones.
func (c Config) WithDefaults(l Limits) Config {
	c.Defaults = l.Or(c.Defaults)
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.Defaults.Or(DefaultLimits()).Validate(); err != nil {
		errs = append(errs, err)
	}
	b := c.Backoff
	if b.Threshold < 1 || b.Min <= 0 || b.Max < b.Min {
		errs = append(errs, fmt.Errorf("%w: backoff needs threshold >= 1 and 0 < min <= max, have %d, %v, %v",
			ErrInvalidConfig, b.Threshold, b.Min, b.Max))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: drain_timeout %v must be positive", ErrInvalidConfig, c.DrainTimeout))
	}
	return errors.Join(errs...)
}
