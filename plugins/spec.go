package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/parleyhq/parley/abi"
)

// Spec is everything needed to load one plugin: its module bytes and the
// operator's metadata. Where the bytes come from (a directory, the admin
// API, the cluster's replicated plugin set) is the caller's business.
type Spec struct {
	// Name identifies the plugin: lower-case letters, digits, '-', '_'
	// and '.', at most 64 characters.
	Name string `json:"name"`
	// Version is the operator's label for this build, shown in List and
	// logs and passed to the plugin's init hook.
	Version string `json:"version"`
	// Module is the WebAssembly binary.
	Module []byte `json:"-"`
	// SHA256 is the hex digest of Module. When set, the load fails unless
	// it matches; when empty it is computed.
	SHA256 string `json:"sha256,omitempty"`
	// Config is the plugin's configuration, readable through the config
	// capability. It must be JSON when set.
	Config json.RawMessage `json:"config,omitempty"`
	// Capabilities are the host modules the plugin may import.
	Capabilities []abi.Capability `json:"capabilities,omitempty"`
	// Limits override Config.Defaults field by field.
	Limits Limits `json:"limits,omitzero"`
	// Order places the plugin in each hook's chain: ascending, ties broken
	// by Name.
	Order int `json:"order,omitempty"`
	// WebhookAllow, when not empty, are the URL prefixes the webhook
	// capability may send to; otherwise any http or https URL.
	WebhookAllow []string `json:"webhook_allow,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// normalize validates s and fills in the digest. It returns a copy that
// shares Module with s.
func (s Spec) normalize() (Spec, error) {
	var errs []error
	if !nameRE.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("name %q must match %s", s.Name, nameRE))
	}
	if len(s.Module) == 0 {
		errs = append(errs, errors.New("module is empty"))
	}
	if len(s.Config) > 0 && !json.Valid(s.Config) {
		errs = append(errs, errors.New("config is not valid JSON"))
	}
	for _, c := range s.Capabilities {
		if !c.Valid() {
			errs = append(errs, fmt.Errorf("unknown capability %q (known: %v)", c, abi.Capabilities))
		}
	}
	for _, p := range s.WebhookAllow {
		if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook_allow %q is not an http(s) URL prefix", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("%w: plugin %q: %w", ErrInvalidConfig, s.Name, err)
	}
	sum := sha256.Sum256(s.Module)
	digest := hex.EncodeToString(sum[:])
	if s.SHA256 != "" && !strings.EqualFold(s.SHA256, digest) {
		return s, fmt.Errorf("%w: plugin %q: expected %s, module is %s", ErrChecksum, s.Name, s.SHA256, digest)
	}
	s.SHA256 = digest
	s.Capabilities = slices.Clone(s.Capabilities)
	slices.Sort(s.Capabilities)
	s.Capabilities = slices.Compact(s.Capabilities)
	return s, nil
}

// granted reports whether the spec grants capability c.
func (s Spec) granted(c abi.Capability) bool { return slices.Contains(s.Capabilities, c) }

// webhookAllowed reports whether the webhook capability may send to u.
func (s Spec) webhookAllowed(u string) bool {
	if len(s.WebhookAllow) == 0 {
		return true
	}
	for _, p := range s.WebhookAllow {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}
