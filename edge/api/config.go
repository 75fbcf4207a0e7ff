// Package api is Parley's server API: the authenticated HTTP endpoints a
// site's backend uses to manage rooms, participants, plugins, webhooks and
// API keys, and the HTTP actions endpoint (POST /v1/actions) that runs a
// batch of actions and streams one result line per action as it completes.
//
// Requests are authenticated with an API key (HMAC request signing or a
// signed bearer token, see auth.go) or the node's admin token. On a
// cluster, writes to a room run on the node that owns it: the API forwards
// them there with a node-to-node signature (forward.go). docs/openapi.json
// describes every endpoint.
package api

import (
	"errors"
	"fmt"
	"time"
)

// Config bounds the server API. Start from DefaultConfig.
type Config struct {
	// MaxBodyBytes caps a request body of the JSON endpoints.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// MaxActions caps the actions of one POST /v1/actions batch (413).
	MaxActions int `json:"max_actions"`
	// MaxPayloadBytes caps the body of one POST /v1/actions (413).
	MaxPayloadBytes int64 `json:"max_payload_bytes"`
	// RequestTimeout bounds a whole request: reading the body (408) and
	// running its actions (actions still running get a timeout line).
	RequestTimeout time.Duration `json:"request_timeout"`
	// IdleTimeout bounds a request without progress: no body bytes arrive
	// (408), or no action completes (the rest get a timeout line).
	IdleTimeout time.Duration `json:"idle_timeout"`
	// ActionTimeout bounds one action; it fails with code timeout.
	ActionTimeout time.Duration `json:"action_timeout"`
	// Concurrency is how many actions of one batch run at once.
	Concurrency int `json:"concurrency"`
	// IdempotencyTTL is how long the response to a request made with an
	// Idempotency-Key is kept for replay.
	IdempotencyTTL time.Duration `json:"idempotency_ttl"`
	// MaxRecordBytes caps a response kept for replay; a larger one is
	// not kept (a retry runs again).
	MaxRecordBytes int `json:"max_record_bytes"`
	// ClockSkew is the accepted difference between a signed request's
	// timestamp and the server's clock (both ways); nonces are remembered
	// this long.
	ClockSkew time.Duration `json:"clock_skew"`
	// MaxTokenLifetime caps exp-iat of a bearer token.
	MaxTokenLifetime time.Duration `json:"max_token_lifetime"`
	// MaxNonces bounds the replay cache of one node; when it is full of
	// live nonces, signed requests are refused with 429 until some expire.
	MaxNonces int `json:"max_nonces"`
}

// DefaultConfig returns the limits documented in docs/openapi.json.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:     1 << 20,
		MaxActions:       100,
		MaxPayloadBytes:  4 << 20,
		RequestTimeout:   60 * time.Second,
		IdleTimeout:      15 * time.Second,
		ActionTimeout:    10 * time.Second,
		Concurrency:      8,
		IdempotencyTTL:   24 * time.Hour,
		MaxRecordBytes:   1 << 20,
		ClockSkew:        5 * time.Minute,
		MaxTokenLifetime: time.Hour,
		MaxNonces:        100000,
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("api: %s must be positive", name))
		}
	}
	pos("max_body_bytes", c.MaxBodyBytes > 0)
	pos("max_actions", c.MaxActions > 0)
	pos("max_payload_bytes", c.MaxPayloadBytes > 0)
	pos("request_timeout", c.RequestTimeout > 0)
	pos("idle_timeout", c.IdleTimeout > 0)
	pos("action_timeout", c.ActionTimeout > 0)
	pos("concurrency", c.Concurrency > 0)
	pos("idempotency_ttl", c.IdempotencyTTL > 0)
	pos("max_record_bytes", c.MaxRecordBytes > 0)
	pos("clock_skew", c.ClockSkew > 0)
	pos("max_token_lifetime", c.MaxTokenLifetime > 0)
	pos("max_nonces", c.MaxNonces > 0)
	if c.ActionTimeout > c.RequestTimeout && c.RequestTimeout > 0 {
		errs = append(errs, fmt.Errorf("api: action_timeout %s exceeds request_timeout %s", c.ActionTimeout, c.RequestTimeout))
	}
	return errors.Join(errs...)
}
