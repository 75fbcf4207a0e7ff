// Package devtoken mints and verifies Parley's development tokens: compact
// JWTs signed with HS256 over a node secret. `parley token` mints them; the
// built-in Verifier accepts them when no auth plugin is loaded, and the stock
// jwtauth plugin accepts the same tokens.
//
// Claims: iss, aud, sub (identity), name, room, grants, metadata, exp, nbf,
// iat. Times are Unix seconds.
package devtoken

import (
	"context"
	"errors"
	"time"

	"github.com/parleyhq/parley/core"
)

// Default issuer and audience.
const (
	DefaultIssuer   = "parley"
	DefaultAudience = "parley"
)

// MaxTokenLength bounds the tokens Verify accepts.
const MaxTokenLength = 8 << 10

// MinSecretLength is the shortest secret Mint and Verify accept.
const MinSecretLength = 16

var errShortSecret = errors.New("devtoken: secret shorter than 16 bytes")

// Payload is the JSON claim set of a token.
type Payload struct {
	Issuer    string      `json:"iss"`
	Audience  string      `json:"aud"`
	Subject   string      `json:"sub"`
	Name      string      `json:"name,omitempty"`
	Room      string      `json:"room"`
	Grants    core.Grants `json:"grants"`
	Metadata  string      `json:"metadata,omitempty"`
	ExpiresAt int64       `json:"exp"`
	NotBefore int64       `json:"nbf"`
	IssuedAt  int64       `json:"iat"`
}

// Mint signs a token for c valid from now for ttl, with the default issuer
// and audience.
func Mint(secret []byte, c core.Claims, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < MinSecretLength {
		return "", errShortSecret
	}
	if c.Identity == "" || c.Room == "" {
		return "", errors.New("devtoken: identity and room are required")
	}
	if ttl <= 0 {
		return "", errors.New("devtoken: ttl must be positive")
	}
	p := Payload{
		Issuer: DefaultIssuer, Audience: DefaultAudience,
		Subject: c.Identity, Name: c.Name, Room: c.Room, Grants: c.Grants, Metadata: c.Metadata,
		ExpiresAt: now.Add(ttl).Unix(), NotBefore: now.Unix(), IssuedAt: now.Unix(),
	}
	return SignJWT(secret, p)
}

// Verifier is a core.Authenticator over development tokens.
type Verifier struct {
	Secret []byte
	// Skew is the clock skew tolerated on exp and nbf.
	Skew time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Authenticate implements core.Authenticator.
func (v *Verifier) Authenticate(_ context.Context, token string) (core.Claims, error) {
	p, err := v.verify(token)
	if err != nil {
		return core.Claims{}, err
	}
	c := core.Claims{Identity: p.Subject, Name: p.Name, Room: p.Room, Grants: p.Grants, Metadata: p.Metadata}
	if p.ExpiresAt != 0 {
		c.ExpiresAt = time.Unix(p.ExpiresAt, 0)
	}
	return c, nil
}

func (v *Verifier) verify(token string) (Payload, error) {
	var p Payload
	if len(v.Secret) < MinSecretLength {
		return p, errShortSecret
	}
	valid, err := OpenJWT(token, &p)
	if err != nil {
		return p, core.Errorf(core.CodeInvalidToken, "%v", err)
	}
	if !valid(v.Secret) {
		return p, core.Errorf(core.CodeInvalidToken, "bad token signature")
	}
	return p, v.checkClaims(p)
}

func (v *Verifier) checkClaims(p Payload) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	switch {
	case p.Issuer != DefaultIssuer:
		return core.Errorf(core.CodeInvalidToken, "token issuer %q not accepted", p.Issuer)
	case p.Audience != DefaultAudience:
		return core.Errorf(core.CodeInvalidToken, "token audience %q not accepted", p.Audience)
	case p.Subject == "" || p.Room == "":
		return core.Errorf(core.CodeInvalidToken, "token lacks identity (sub) or room")
	case p.ExpiresAt == 0:
		return core.Errorf(core.CodeInvalidToken, "token has no expiry")
	case now.Add(-v.Skew).Unix() >= p.ExpiresAt:
		return core.Errorf(core.CodeTokenExpired, "token expired at %s", time.Unix(p.ExpiresAt, 0).UTC().Format(time.RFC3339))
	case p.NotBefore != 0 && now.Add(v.Skew).Unix() < p.NotBefore:
		return core.Errorf(core.CodeInvalidToken, "token not valid before %s", time.Unix(p.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	return nil
}
