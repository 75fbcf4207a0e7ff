package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/abi"
)

// Manifest is the optional <name>.json beside <name>.wasm in a plugin
// directory. Without one, a stock plugin gets its stock capabilities and
// order, any other plugin none.
type Manifest struct {
	Name         string           `json:"name,omitempty"` // default: the file's base name
	Version      string           `json:"version,omitempty"`
	Order        *int             `json:"order,omitempty"`
	Config       json.RawMessage  `json:"config,omitempty"`
	Capabilities []abi.Capability `json:"capabilities,omitempty"`
	Limits       ManifestLimits   `json:"limits,omitzero"`
	WebhookAllow []string         `json:"webhook_allow,omitempty"`
	Disabled     bool             `json:"disabled,omitempty"`
}

// ManifestLimits are Limits with durations written as "250ms", "5s".
type ManifestLimits struct {
	MemoryPages   uint32  `json:"memory_pages,omitempty"`
	CallTimeout   string  `json:"call_timeout,omitempty"`
	InitTimeout   string  `json:"init_timeout,omitempty"`
	MaxInput      int     `json:"max_input,omitempty"`
	MaxOutput     int     `json:"max_output,omitempty"`
	PoolSize      int     `json:"pool_size,omitempty"`
	WarmInstances int     `json:"warm_instances,omitempty"`
	LogRate       float64 `json:"log_rate,omitempty"`
}

func (l ManifestLimits) limits() (Limits, error) {
	out := Limits{MemoryPages: l.MemoryPages, MaxInput: l.MaxInput, MaxOutput: l.MaxOutput,
		PoolSize: l.PoolSize, WarmInstances: l.WarmInstances, LogRate: l.LogRate}
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{l.CallTimeout, &out.CallTimeout}, {l.InitTimeout, &out.InitTimeout}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return out, fmt.Errorf("%w: duration %q: %w", ErrInvalidConfig, d.s, err)
		}
		*d.dst = v
	}
	return out, nil
}

// ReadDir reads every <name>.wasm of dir with its optional manifest into
// Specs, skipping disabled ones. Versions default to the digest's first 12
// hex digits.
func ReadDir(dir string) ([]Spec, error) {
	specs, _, err := readDir(dir)
	return specs, err
}

// readDir is ReadDir that also names the plugins it failed to read.
func readDir(dir string) (specs []Spec, failed []string, err error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil {
		return nil, nil, fmt.Errorf("plugins: read dir %s: %w", dir, err)
	}
	slices.Sort(paths)
	var errs []error
	for _, p := range paths {
		s, disabled, err := readPlugin(p)
		switch {
		case err != nil:
			errs = append(errs, err)
			failed = append(failed, strings.TrimSuffix(filepath.Base(p), ".wasm"))
		case !disabled:
			specs = append(specs, s)
		}
	}
	return specs, failed, errors.Join(errs...)
}

// readPlugin reads one module and its manifest.
func readPlugin(path string) (Spec, bool, error) {
	base := strings.TrimSuffix(filepath.Base(path), ".wasm")
	module, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, false, fmt.Errorf("plugins: %w", err)
	}
	b, err := os.ReadFile(strings.TrimSuffix(path, ".wasm") + ".json")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Spec{}, false, fmt.Errorf("plugins: %w", err)
	}
	man, err := ParseManifest(b)
	if err != nil {
		return Spec{}, false, fmt.Errorf("manifest of %s: %w", base, err)
	}
	s, err := SpecFromManifest(base, module, man)
	return s, man.Disabled, err
}

// ParseManifest decodes a manifest, rejecting unknown fields. Empty input
// is the empty manifest.
func ParseManifest(b []byte) (Manifest, error) {
	var man Manifest
	if len(bytes.TrimSpace(b)) == 0 {
		return man, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return man, fmt.Errorf("%w: manifest: %w", ErrInvalidConfig, err)
	}
	return man, nil
}

// SpecFromManifest builds the Spec that loads module under the manifest,
// as a plugin directory would: the name defaults to base, a stock plugin
// gets its stock capabilities and order unless the manifest sets them,
// and the version defaults to the digest's first 12 hex digits.
func SpecFromManifest(base string, module []byte, man Manifest) (Spec, error) {
	s := Spec{Name: cmpOr(man.Name, base), Version: man.Version, Module: module, Config: man.Config,
		Capabilities: man.Capabilities, WebhookAllow: man.WebhookAllow}
	if stock, err := StockSpec(s.Name, "", nil, nil); err == nil {
		if man.Capabilities == nil {
			s.Capabilities = stock.Capabilities
		}
		s.Order = stock.Order
	}
	if man.Order != nil {
		s.Order = *man.Order
	}
	var err error
	if s.Limits, err = man.Limits.limits(); err != nil {
		return Spec{}, fmt.Errorf("plugin %s: %w", s.Name, err)
	}
	if s, err = s.normalize(); err != nil {
		return Spec{}, err
	}
	if s.Version == "" {
		s.Version = s.SHA256[:12]
	}
	return s, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Changes reports what Sync did, by plugin name.
type Changes struct {
	Loaded, Replaced, Unloaded, Unchanged []string
}

// Sync makes the loaded set equal to specs: it loads new plugins, replaces
// changed ones (module, version, config, grants, limits or order) and
// unloads the others. A plugin that fails to load keeps its previous
// generation; the errors are joined.
func (m *Manager) Sync(ctx context.Context, specs []Spec) (Changes, error) {
	var ch Changes
	var errs []error
	want := map[string]bool{}
	for _, s := range specs {
		want[s.Name] = true
		n, err := s.normalize()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cur := m.snap.Load().byName[n.Name]
		switch {
		case cur == nil:
			if err := m.Load(ctx, n); err != nil {
				errs = append(errs, err)
				continue
			}
			ch.Loaded = append(ch.Loaded, n.Name)
		case sameSpec(cur.spec, n):
			ch.Unchanged = append(ch.Unchanged, n.Name)
		default:
			if err := m.Replace(ctx, n); err != nil {
				errs = append(errs, err)
				continue
			}
			ch.Replaced = append(ch.Replaced, n.Name)
		}
	}
	for _, e := range m.snap.Load().entries {
		if !want[e.spec.Name] {
			if err := m.Unload(ctx, e.spec.Name); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			ch.Unloaded = append(ch.Unloaded, e.spec.Name)
		}
	}
	return ch, errors.Join(errs...)
}

// sameSpec reports whether two normalized specs load the same generation.
func sameSpec(a, b Spec) bool {
	return a.SHA256 == b.SHA256 && a.Version == b.Version && compactJSON(a.Config) == compactJSON(b.Config) &&
		slices.Equal(a.Capabilities, b.Capabilities) && a.Limits == b.Limits && a.Order == b.Order &&
		slices.Equal(a.WebhookAllow, b.WebhookAllow)
}

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// ReloadDir syncs the loaded set with the plugin directory dir: what SIGHUP
// and `parley plugins reload` trigger. Unreadable files are reported and
// leave their plugins as they are.
func (m *Manager) ReloadDir(ctx context.Context, dir string) (Changes, error) {
	specs, failed, readErr := readDir(dir)
	for _, name := range failed { // keep what failed to read as it is
		if e := m.snap.Load().byName[name]; e != nil {
			specs = append(specs, e.spec)
		}
	}
	ch, err := m.Sync(ctx, specs)
	return ch, errors.Join(readErr, err)
}
