// Package whsig signs and verifies webhook requests in the Standard
// Webhooks convention: the signed message is "id.timestamp.body", and the
// "webhook-signature" header holds space-separated "version,base64"
// signatures — "v1" for HMAC-SHA256 with a shared secret, "v1a" for
// Ed25519 with an asymmetric key. Receivers accept a request when any one
// signature verifies.
package whsig

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Signature versions.
const (
	VersionHMAC    = "v1"
	VersionEd25519 = "v1a"
)

// Errors Verify returns.
var (
	ErrNoSignature = errors.New("whsig: no signature")
	ErrMismatch    = errors.New("whsig: no signature verifies")
)

// SecretKey returns the HMAC key of a secret: a "whsec_" prefix means the
// rest is base64 (as Standard Webhooks libraries expect); otherwise the
// secret's bytes are the key.
func SecretKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if dec, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return dec
		}
	}
	return []byte(secret)
}

func message(id, timestamp string, body []byte) []byte {
	msg := make([]byte, 0, len(id)+len(timestamp)+len(body)+2)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = append(msg, timestamp...)
	msg = append(msg, '.')
	return append(msg, body...)
}

// Sign returns the webhook-signature header value for a request: a "v1"
// HMAC signature when secret is set, then one "v1a" Ed25519 signature per
// key, separated by spaces; "" when there is neither. Keys of the wrong
// size are skipped.
func Sign(id, timestamp string, body []byte, secret string, keys ...ed25519.PrivateKey) string {
	msg := message(id, timestamp, body)
	var sigs []string
	if secret != "" {
		mac := hmac.New(sha256.New, SecretKey(secret))
		mac.Write(msg)
		sigs = append(sigs, VersionHMAC+","+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	for _, k := range keys {
		if len(k) == ed25519.PrivateKeySize {
			sigs = append(sigs, VersionEd25519+","+base64.StdEncoding.EncodeToString(ed25519.Sign(k, msg)))
		}
	}
	return strings.Join(sigs, " ")
}

// Verify checks a webhook-signature header value against the request. It
// succeeds when at least one signature verifies with secret (v1) or with
// one of keys (v1a). Unknown versions and malformed entries are skipped,
// as the convention asks.
func Verify(header, id, timestamp string, body []byte, secret string, keys ...ed25519.PublicKey) error {
	fields := strings.Fields(header)
	if len(fields) == 0 {
		return ErrNoSignature
	}
	msg := message(id, timestamp, body)
	var mac []byte
	if secret != "" {
		h := hmac.New(sha256.New, SecretKey(secret))
		h.Write(msg)
		mac = h.Sum(nil)
	}
	for _, f := range fields {
		version, b64, ok := strings.Cut(f, ",")
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		switch version {
		case VersionHMAC:
			if mac != nil && hmac.Equal(sig, mac) {
				return nil
			}
		case VersionEd25519:
			for _, k := range keys {
				if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w (%d signatures)", ErrMismatch, len(fields))
}
