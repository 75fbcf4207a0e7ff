package core

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// ID prefixes make identifiers self-describing in logs.
const (
	PrefixParticipant = "PA_"
	PrefixTrack       = "TR_"
	PrefixSession     = "SE_"
	PrefixNode        = "NO_"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns prefix followed by 16 random characters (80 bits).
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// NewSecret returns n random bytes encoded as lowercase base32, for resume
// tokens and other bearer secrets.
func NewSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(idEncoding.EncodeToString(b))
}
