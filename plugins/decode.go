package plugins

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/abi"
)

// errNoOutput is the bad output of a hook that set none.
var errNoOutput = errors.New("the hook set no output")

// decodeObject unmarshals a JSON object into v. Anything else (null, an
// array, trailing garbage) is an error.
func decodeObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("output is not a JSON object")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("output is not valid JSON: %w", err)
	}
	return nil
}

// wireDecision is abi.Decision with "allow" required.
type wireDecision struct {
	Allow *bool `json:"allow"`
	abi.Decision
}

// decodeDecision parses and validates a Decision: "allow" is required,
// codes outside abi.DenialCodes become forbidden, the reason is cut to
// abi.MaxReason, and oversized metadata or a negative bitrate is an error.
func decodeDecision(b []byte) (abi.Decision, error) {
	var w wireDecision
	if err := decodeObject(b, &w); err != nil {
		return abi.Decision{}, err
	}
	if w.Allow == nil {
		return abi.Decision{}, errors.New(`decision has no "allow" field`)
	}
	d := w.Decision
	d.Allow = *w.Allow
	if d.MaxBitrate < 0 {
		return abi.Decision{}, fmt.Errorf("decision has negative max_bitrate %d", d.MaxBitrate)
	}
	if d.Metadata != nil && len(*d.Metadata) > abi.MaxMetadata {
		return abi.Decision{}, fmt.Errorf("decision metadata of %d bytes exceeds %d", len(*d.Metadata), abi.MaxMetadata)
	}
	d.Reason = truncate(d.Reason, abi.MaxReason)
	if d.Allow {
		d.Code = ""
	} else if !abi.ValidDenialCode(d.Code) {
		d.Code = abi.CodeForbidden
	}
	return d, nil
}

// wireAuth is abi.AuthResult with "allow" required.
type wireAuth struct {
	Allow *bool `json:"allow"`
	abi.AuthResult
}

// decodeAuthResult parses and validates an AuthResult: "allow" is
// required, allow and skip exclude each other, an allow names an identity
// unless earlier claims exist (hasClaims), and a deny's code defaults to
// invalid_token.
func decodeAuthResult(b []byte, hasClaims bool) (abi.AuthResult, error) {
	var w wireAuth
	if err := decodeObject(b, &w); err != nil {
		return abi.AuthResult{}, err
	}
	if w.Allow == nil {
		return abi.AuthResult{}, errors.New(`auth result has no "allow" field`)
	}
	r := w.AuthResult
	r.Allow = *w.Allow
	switch {
	case r.Allow && r.Skip:
		return abi.AuthResult{}, errors.New("auth result both allows and skips")
	case r.Allow && !hasClaims && (r.Claims == nil || r.Claims.Identity == ""):
		return abi.AuthResult{}, errors.New("auth result allows without claims naming an identity")
	case r.Claims != nil && len(r.Claims.Metadata) > abi.MaxMetadata:
		return abi.AuthResult{}, fmt.Errorf("claims metadata of %d bytes exceeds %d", len(r.Claims.Metadata), abi.MaxMetadata)
	}
	r.Reason = truncate(r.Reason, abi.MaxReason)
	if r.Allow || r.Skip {
		r.Code = ""
	} else if !abi.ValidDenialCode(r.Code) {
		r.Code = abi.CodeInvalidToken
	}
	return r, nil
}

// decodeInitResult parses an init hook's output.
func decodeInitResult(b []byte) (abi.InitResult, error) {
	var r abi.InitResult
	if err := decodeObject(b, &r); err != nil {
		return r, fmt.Errorf("init result: %w", err)
	}
	for _, h := range r.Hooks {
		if !h.Valid() || h == abi.HookInit {
			return r, fmt.Errorf("init result names unknown hook %q", h)
		}
	}
	return r, nil
}

// decodeWebhook parses and validates a webhook_send payload.
func decodeWebhook(b []byte) (abi.WebhookRequest, error) {
	var r abi.WebhookRequest
	if err := decodeObject(b, &r); err != nil {
		return r, fmt.Errorf("webhook request: %w", err)
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return r, fmt.Errorf("webhook url %q is not an absolute http(s) URL", r.URL)
	}
	if len(r.Body) == 0 || !json.Valid(r.Body) {
		return r, errors.New("webhook body is not JSON")
	}
	if len(r.ID) > 256 || len(r.Target) > 256 || len(r.Event) > 256 {
		return r, errors.New("webhook id, target or event longer than 256 bytes")
	}
	for k, v := range r.Headers {
		if !validHeaderName(k) {
			return r, fmt.Errorf("webhook header %q is not a valid or allowed header name", k)
		}
		if len(v) > 1024 || strings.ContainsAny(v, "\r\n\x00") {
			return r, fmt.Errorf("webhook header %q has an invalid value", k)
		}
	}
	return r, nil
}

// validHeaderName accepts token characters and refuses the headers the
// host sets itself.
func validHeaderName(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !ok {
			return false
		}
	}
	switch strings.ToLower(k) {
	case "content-type", "content-length", "host", "webhook-id", "webhook-timestamp", "webhook-signature":
		return false
	}
	return true
}
