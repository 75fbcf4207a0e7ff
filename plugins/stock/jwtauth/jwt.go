package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/sdk/plugin"
)

// Config is the plugin's configuration; see the package documentation.
type Config struct {
	HS256Secret   string      `json:"hs256_secret"`
	HS256Secrets  []string    `json:"hs256_secrets"`
	Ed25519Keys   []string    `json:"ed25519_public_keys"`
	Issuer        string      `json:"issuer"`
	Audience      string      `json:"audience"`
	ClockSkew     string      `json:"clock_skew"`
	RequireExpiry *bool       `json:"require_expiry"`
	DefaultGrants *abi.Grants `json:"default_grants"`
	RoleClaim     string      `json:"role_claim"`
	SkipForeign   bool        `json:"skip_foreign"`
	MaxTokenBytes int         `json:"max_token_bytes"`
}

// Verifier checks tokens against a Config.
type Verifier struct {
	secrets       [][]byte
	keys          []ed25519.PublicKey
	issuer        string
	audience      string
	skew          time.Duration
	requireExpiry bool
	defaultGrants abi.Grants
	roleClaim     string
	skipForeign   bool
	maxBytes      int
	now           func() time.Time
}

// NewVerifier validates cfg. now is the clock.
func NewVerifier(cfg Config, now func() time.Time) (*Verifier, error) {
	v := &Verifier{issuer: cfg.Issuer, audience: cfg.Audience, roleClaim: cfg.RoleClaim,
		skipForeign: cfg.SkipForeign, maxBytes: cfg.MaxTokenBytes, now: now, skew: 30 * time.Second,
		requireExpiry: cfg.RequireExpiry == nil || *cfg.RequireExpiry,
		defaultGrants: abi.Grants{CanSubscribe: true}}
	for _, s := range append([]string{cfg.HS256Secret}, cfg.HS256Secrets...) {
		if s != "" {
			v.secrets = append(v.secrets, []byte(s))
		}
	}
	for _, k := range cfg.Ed25519Keys {
		key, err := parseEd25519(k)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, key)
	}
	if len(v.secrets) == 0 && len(v.keys) == 0 {
		return nil, errors.New("jwtauth: configure hs256_secret or ed25519_public_keys")
	}
	if cfg.ClockSkew != "" {
		d, err := time.ParseDuration(cfg.ClockSkew)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("jwtauth: clock_skew %q is not a non-negative duration", cfg.ClockSkew)
		}
		v.skew = d
	}
	if v.issuer == "" {
		v.issuer = "parley"
	}
	if v.audience == "" {
		v.audience = "parley"
	}
	if v.roleClaim == "" {
		v.roleClaim = "role"
	}
	if len(v.roleClaim) > 16 {
		return nil, fmt.Errorf("jwtauth: role_claim %q is longer than 16 bytes", v.roleClaim)
	}
	if v.maxBytes <= 0 {
		v.maxBytes = 8 << 10
	}
	if cfg.DefaultGrants != nil {
		v.defaultGrants = *cfg.DefaultGrants
	}
	return v, nil
}

// parseEd25519 reads a public key as base64 (standard or URL alphabet) of
// its 32 bytes, or as a PEM "PUBLIC KEY" block.
func parseEd25519(s string) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode([]byte(s)); block != nil {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if pk, ok := k.(ed25519.PublicKey); err == nil && ok {
			return pk, nil
		}
		return nil, fmt.Errorf("jwtauth: PEM key is not an Ed25519 public key")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(strings.TrimSpace(s)); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("jwtauth: ed25519 public key %.12q... is neither base64 of 32 bytes nor PEM", s)
}

// claims are a token's payload.
type claims struct {
	Issuer    string          `json:"iss"`
	Audience  json.RawMessage `json:"aud"`
	Subject   string          `json:"sub"`
	Name      string          `json:"name"`
	Room      string          `json:"room"`
	Grants    *abi.Grants     `json:"grants"`
	Metadata  string          `json:"metadata"`
	ExpiresAt *float64        `json:"exp"`
	NotBefore *float64        `json:"nbf"`
	IssuedAt  *float64        `json:"iat"`
	payload   string          // the decoded JSON, for the role claim
}

func deny(code, format string, args ...any) abi.AuthResult {
	return abi.AuthResult{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Verify checks a token and returns the auth hook's answer.
func (v *Verifier) Verify(token string) abi.AuthResult {
	if len(token) > v.maxBytes {
		return deny(abi.CodeInvalidToken, "token longer than %d bytes", v.maxBytes)
	}
	c, res, ok := v.parse(token)
	if !ok {
		return res
	}
	return v.check(c)
}

// parse splits, decodes and authenticates a token.
func (v *Verifier) parse(token string) (claims, abi.AuthResult, bool) {
	var c claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		if v.skipForeign {
			return c, abi.AuthResult{Skip: true}, false
		}
		return c, deny(abi.CodeInvalidToken, "token is not a JWT"), false
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return c, deny(abi.CodeInvalidToken, "token header is not base64url"), false
	}
	alg, ok := plugin.StringField(string(hb), "alg")
	if !ok {
		return c, deny(abi.CodeInvalidToken, "token header is not a JSON object with an alg"), false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return c, deny(abi.CodeInvalidToken, "token signature is not base64url"), false
	}
	signed := []byte(parts[0] + "." + parts[1])
	switch alg {
	case "HS256":
		if !v.verifyHS256(signed, sig) {
			return c, deny(abi.CodeInvalidToken, "bad token signature"), false
		}
	case "EdDSA":
		if !v.verifyEdDSA(signed, sig) {
			return c, deny(abi.CodeInvalidToken, "bad token signature"), false
		}
	default:
		return c, deny(abi.CodeInvalidToken, "unsupported token algorithm %q", alg), false
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, deny(abi.CodeInvalidToken, "token payload is not base64url"), false
	}
	if err := json.Unmarshal(pb, &c); err != nil {
		return c, deny(abi.CodeInvalidToken, "token payload is not a JSON object of the expected shape"), false
	}
	c.payload = string(pb)
	return c, abi.AuthResult{}, true
}

func (v *Verifier) verifyHS256(signed, sig []byte) bool {
	for _, s := range v.secrets {
		m := hmac.New(sha256.New, s)
		m.Write(signed)
		if hmac.Equal(m.Sum(nil), sig) {
			return true
		}
	}
	return false
}

func (v *Verifier) verifyEdDSA(signed, sig []byte) bool {
	for _, k := range v.keys {
		if ed25519.Verify(k, signed, sig) {
			return true
		}
	}
	return false
}

// check validates the authenticated claims.
func (v *Verifier) check(c claims) abi.AuthResult {
	now := v.now()
	switch {
	case v.issuer != "*" && c.Issuer != v.issuer:
		if v.skipForeign {
			return abi.AuthResult{Skip: true}
		}
		return deny(abi.CodeInvalidToken, "token issuer %q not accepted", c.Issuer)
	case v.audience != "*" && !hasAudience(c.Audience, v.audience):
		return deny(abi.CodeInvalidToken, "token audience does not include %q", v.audience)
	case c.Subject == "" || c.Room == "":
		return deny(abi.CodeInvalidToken, "token lacks identity (sub) or room")
	case c.ExpiresAt == nil && v.requireExpiry:
		return deny(abi.CodeInvalidToken, "token has no expiry")
	case c.ExpiresAt != nil && !now.Add(-v.skew).Before(unix(*c.ExpiresAt)):
		return deny(abi.CodeTokenExpired, "token expired at %s", unix(*c.ExpiresAt).UTC().Format(time.RFC3339))
	case c.NotBefore != nil && now.Add(v.skew).Before(unix(*c.NotBefore)):
		return deny(abi.CodeInvalidToken, "token not valid before %s", unix(*c.NotBefore).UTC().Format(time.RFC3339))
	}
	out := &abi.Claims{Identity: c.Subject, Name: c.Name, Room: c.Room, Metadata: c.Metadata, Grants: v.defaultGrants}
	if c.Grants != nil {
		out.Grants = *c.Grants
	}
	if c.ExpiresAt != nil {
		out.ExpiresAt = int64(*c.ExpiresAt)
	}
	out.Role, _ = plugin.StringField(c.payload, v.roleClaim) // a role that is not a string is ignored
	return abi.AuthResult{Allow: true, Claims: out}
}

func unix(sec float64) time.Time { return time.Unix(int64(sec), 0) }

// hasAudience reports whether aud (a string or an array of strings)
// includes want.
func hasAudience(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(aud, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}
