package devtoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The HS256 JWT encoding, shared by development tokens and by the server
// API's bearer tokens (edge/api), which differ only in their claims and in
// how the secret is found.

// ErrMalformed means a token is not a well-formed HS256 JWT.
var ErrMalformed = errors.New("devtoken: not an HS256 JWT")

var header = b64(`{"alg":"HS256","typ":"JWT"}`)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// SignJWT encodes claims as JSON and returns them as an HS256 JWT signed
// with secret.
func SignJWT(secret []byte, claims any) (string, error) {
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devtoken: encode claims: %w", err)
	}
	signing := header + "." + base64.RawURLEncoding.EncodeToString(body)
	return signing + "." + sign(secret, signing), nil
}

func sign(secret []byte, s string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// OpenJWT decodes the claims of an HS256 JWT into dst WITHOUT checking its
// signature, and returns the check: valid reports, in constant time,
// whether the token was signed with secret. It is for verifiers that pick
// the secret from the claims (an issuer naming its key); nothing in dst may
// be trusted before valid returned true. Tokens longer than MaxTokenLength
// and headers other than alg HS256 are ErrMalformed.
func OpenJWT(token string, dst any) (valid func(secret []byte) bool, err error) {
	if len(token) > MaxTokenLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLength)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %d parts", ErrMalformed, len(parts))
	}
	enc := base64.RawURLEncoding
	var head struct {
		Alg string `json:"alg"`
	}
	hb, err := enc.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &head) != nil || head.Alg != "HS256" {
		return nil, fmt.Errorf("%w: unsupported header", ErrMalformed)
	}
	body, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return nil, fmt.Errorf("%w: payload is not JSON claims: %w", ErrMalformed, err)
	}
	signing, sig := parts[0]+"."+parts[1], parts[2]
	return func(secret []byte) bool {
		return hmac.Equal([]byte(sign(secret, signing)), []byte(sig))
	}, nil
}
