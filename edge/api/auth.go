package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/devtoken"
)

// Audience is the "aud" every API bearer token must carry.
const Audience = "parley-api"

// AdminPrincipal is the principal of requests made with the admin token.
const AdminPrincipal = "admin"

// principal is who made a request: an API key id or AdminPrincipal.
type principal struct {
	id        string
	forwarded bool // came from another node of the cluster
}

func (p principal) admin() bool { return p.id == AdminPrincipal }

// NewKey returns a fresh API key: id "AK" + random, secret 32 random bytes
// (base64url). The secret is shown once; store it like a password.
func NewKey(name string, now time.Time) core.APIKey {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return core.APIKey{ID: "AK" + strings.ToUpper(core.NewSecret(10)), Name: name, Secret: base64.RawURLEncoding.EncodeToString(b), Created: now.UTC()}
}

// StringToSign is what a Parley-HMAC-SHA256 signature covers: the method,
// the path with its query, the timestamp, the nonce and the hex SHA-256 of
// the body, joined by newlines.
func StringToSign(method, pathQuery string, ts int64, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return method + "\n" + pathQuery + "\n" + strconv.FormatInt(ts, 10) + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// SignRequest sets req's Authorization header to a Parley-HMAC-SHA256
// signature by key over body (which must be req's body).
func SignRequest(req *http.Request, body []byte, keyID, secret string, now time.Time) {
	nonce := core.NewSecret(12)
	ts := now.Unix()
	sig := mac([]byte(secret), StringToSign(req.Method, req.URL.RequestURI(), ts, nonce, body))
	req.Header.Set("Authorization", HMACScheme+" key="+keyID+",ts="+strconv.FormatInt(ts, 10)+",nonce="+nonce+",sig="+base64.StdEncoding.EncodeToString(sig))
}

// TokenClaims are the claims of an API bearer token (a JWT, HS256).
type TokenClaims struct {
	Issuer    string          `json:"iss"` // the API key id
	Audience  json.RawMessage `json:"aud"` // "parley-api" (or an array holding it)
	Expires   int64           `json:"exp"`
	IssuedAt  int64           `json:"iat"`
	NotBefore int64           `json:"nbf,omitempty"`
}

// NewToken returns a bearer token for key id keyID signed with secret,
// valid for ttl from now.
func NewToken(keyID, secret string, ttl time.Duration, now time.Time) string {
	tok, _ := devtoken.SignJWT([]byte(secret), map[string]any{"iss": keyID, "aud": Audience, "iat": now.Unix(), "exp": now.Add(ttl).Unix()})
	return tok // claims of strings and numbers always encode
}

// tokenLeeway is the clock difference tolerated on exp, iat and nbf.
const tokenLeeway = 30 * time.Second

// verifyToken checks a bearer JWT and returns its key id.
func (s *Server) verifyToken(tok string, now time.Time) (string, error) {
	var c TokenClaims
	valid, err := devtoken.OpenJWT(tok, &c)
	if err != nil {
		return "", ErrSignature
	}
	key, ok := s.lookupKey(c.Issuer)
	if !ok || !valid([]byte(key.Secret)) {
		return "", ErrSignature
	}
	if !audienceOK(c.Audience) || c.Expires == 0 || c.IssuedAt == 0 || c.Expires-c.IssuedAt > int64(s.cfg.MaxTokenLifetime/time.Second) {
		return "", ErrSignature
	}
	leeway := int64(tokenLeeway / time.Second)
	if n := now.Unix(); n >= c.Expires+leeway || c.IssuedAt > n+leeway || c.NotBefore > n+leeway {
		return "", ErrStale
	}
	return c.Issuer, nil
}

func audienceOK(raw json.RawMessage) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == Audience
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == Audience {
				return true
			}
		}
	}
	return false
}

// lookupKey finds an API key; a revoked or unknown one is absent.
func (s *Server) lookupKey(id string) (core.APIKey, bool) {
	if s.deps.Keys == nil || id == "" {
		return core.APIKey{}, false
	}
	k, ok := s.deps.Keys.APIKey(id)
	return k, ok && k.Secret != ""
}

// authenticate checks r's credentials. body is r's body, read already
// (signatures cover it).
func (s *Server) authenticate(r *http.Request, body []byte) (principal, error) {
	now := s.now()
	if fwd := r.Header.Get(ForwardHeader); fwd != "" {
		return s.verifyForwarded(r, fwd, body, now)
	}
	cred, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return principal{}, err
	}
	if cred.hmac != nil {
		p := cred.hmac
		key, ok := s.lookupKey(p.Key)
		if !ok || !hmac.Equal(p.Sig, mac([]byte(key.Secret), StringToSign(r.Method, r.URL.RequestURI(), p.TS, p.Nonce, body))) {
			return principal{}, ErrSignature
		}
		if err := s.fresh(p.Key, p, now); err != nil {
			return principal{}, err
		}
		return principal{id: key.ID}, nil
	}
	if admin := s.deps.AdminToken; admin != "" && subtle.ConstantTimeCompare([]byte(cred.bearer), []byte(admin)) == 1 {
		return principal{id: AdminPrincipal}, nil
	}
	id, err := s.verifyToken(cred.bearer, now)
	if err != nil {
		return principal{}, err
	}
	return principal{id: id}, nil
}

// fresh checks a signature's timestamp against the window and remembers
// its nonce; a nonce seen before within the window is a replay.
func (s *Server) fresh(scope string, p *signedParams, now time.Time) error {
	skew := int64(s.cfg.ClockSkew / time.Second)
	if d := now.Unix() - p.TS; d > skew || d < -skew {
		return ErrStale
	}
	return s.nonces.remember(scope+"\x00"+p.Nonce, time.Unix(p.TS, 0).Add(s.cfg.ClockSkew), now)
}

// nonceCache remembers the nonces of signed requests until their
// timestamps leave the window, so a captured request cannot be replayed.
// It holds at most max nonces. Safe for concurrent use.
type nonceCache struct {
	max  int
	mu   sync.Mutex
	seen map[string]time.Time // nonce -> when it can be forgotten
}

func newNonceCache(max int) *nonceCache {
	return &nonceCache{max: max, seen: make(map[string]time.Time)}
}

// remember records nonce until expires; it fails for a nonce seen already
// and when the cache is full of live nonces.
func (c *nonceCache) remember(nonce string, expires, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[nonce]; ok && now.Before(exp) {
		return ErrSignature
	}
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return core.Errorf(core.CodeRateLimited, "too many signed requests in the replay window; retry later")
		}
	}
	c.seen[nonce] = expires
	return nil
}

func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
