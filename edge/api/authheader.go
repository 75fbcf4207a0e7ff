package api

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// HMACScheme is the Authorization scheme of signed requests.
const HMACScheme = "Parley-HMAC-SHA256"

// signedParams are the fields of a signed Authorization (or a
// Parley-Forwarded) header value: "key=...,ts=...,nonce=...,sig=...".
type signedParams struct {
	Key   string // API key id, or the forwarding node's id
	TS    int64  // unix seconds
	Nonce string
	Sig   []byte // HMAC-SHA256, 32 bytes
	// Principal is who the forwarded request was made by (forwarding only).
	Principal string
}

var errHeader = errors.New("malformed credentials")

// parseSigned parses the comma-separated k=v list of a signed header. Each
// field appears once; want lists the fields that must be present besides
// ts, nonce and sig.
func parseSigned(v string, want ...string) (signedParams, error) {
	var p signedParams
	if len(v) > 2048 {
		return p, errHeader
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || val == "" || seen[k] {
			return p, errHeader
		}
		seen[k] = true
		switch k {
		case "key", "node":
			if !token(val, 128) {
				return p, errHeader
			}
			p.Key = val
		case "principal":
			if !token(val, 128) {
				return p, errHeader
			}
			p.Principal = val
		case "ts":
			ts, err := strconv.ParseInt(val, 10, 64)
			if err != nil || ts <= 0 || strings.HasPrefix(val, "+") {
				return p, errHeader
			}
			p.TS = ts
		case "nonce":
			if len(val) < 8 || !token(val, 128) {
				return p, errHeader
			}
			p.Nonce = val
		case "sig":
			sig, err := base64.StdEncoding.DecodeString(val)
			if err != nil {
				if sig, err = base64.RawURLEncoding.DecodeString(val); err != nil {
					return p, errHeader
				}
			}
			if len(sig) != 32 {
				return p, errHeader
			}
			p.Sig = sig
		default:
			return p, errHeader
		}
	}
	for _, k := range append([]string{"ts", "nonce", "sig"}, want...) {
		if !seen[k] {
			return p, errHeader
		}
	}
	return p, nil
}

// token reports whether s is 1..max characters of [A-Za-z0-9._~-].
func token(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// credentials is a parsed Authorization header.
type credentials struct {
	hmac   *signedParams // Parley-HMAC-SHA256
	bearer string        // Bearer
}

// parseAuthorization parses an Authorization header value. An empty value
// is ErrMissingAuth; anything unparsable is ErrSignature.
func parseAuthorization(h string) (credentials, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return credentials{}, ErrMissingAuth
	}
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, HMACScheme):
		p, err := parseSigned(rest, "key")
		if err != nil {
			return credentials{}, ErrSignature
		}
		return credentials{hmac: &p}, nil
	case strings.EqualFold(scheme, "Bearer"):
		if rest == "" || len(rest) > 4096 || strings.ContainsAny(rest, " \t") {
			return credentials{}, ErrSignature
		}
		return credentials{bearer: rest}, nil
	}
	return credentials{}, ErrMissingAuth
}
