package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

// do sends method path with body, letting sign set credentials, and
// returns the status and body.
func (ts *testServer) do(t *testing.T, method, path, body string, sign func(*http.Request, []byte)) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sign != nil {
		sign(req, []byte(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// hmacSigned signs with the server's test key.
func (ts *testServer) hmacSigned(req *http.Request, body []byte) {
	SignRequest(req, body, ts.key.ID, ts.key.Secret, time.Now())
}

// bearer uses a fresh token of the server's test key.
func (ts *testServer) bearer(req *http.Request, _ []byte) {
	req.Header.Set("Authorization", "Bearer "+NewToken(ts.key.ID, ts.key.Secret, time.Minute, time.Now()))
}

func adminBearer(req *http.Request, _ []byte) {
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
}

func errCode(t *testing.T, b []byte) core.Code {
	t.Helper()
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return eb.Error.Code
}

func TestAuthAcceptsHMACBearerAndAdmin(t *testing.T) {
	ts := newTestServer(t, nil)
	for name, sign := range map[string]func(*http.Request, []byte){"hmac": ts.hmacSigned, "bearer": ts.bearer, "admin": adminBearer} {
		st, b, _ := ts.do(t, "POST", "/v1/rooms?x=1", `{"name":"r-`+name+`"}`, sign)
		if st != http.StatusCreated {
			t.Fatalf("%s: %d %s", name, st, b)
		}
	}
}

func TestAuthRejects(t *testing.T) {
	ts := newTestServer(t, nil)
	now := time.Now()
	other := NewKey("other", now) // never stored
	signAt := func(key core.APIKey, at time.Time) func(*http.Request, []byte) {
		return func(req *http.Request, body []byte) { SignRequest(req, body, key.ID, key.Secret, at) }
	}
	header := func(v string) func(*http.Request, []byte) {
		return func(req *http.Request, _ []byte) { req.Header.Set("Authorization", v) }
	}
	tok := func(claims map[string]any, alg string, secret string) string {
		enc := base64.RawURLEncoding
		h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
		c, _ := json.Marshal(claims)
		s := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
		if alg == "none" {
			return s + "."
		}
		return s + "." + enc.EncodeToString(mac([]byte(secret), s))
	}
	valid := func() map[string]any {
		return map[string]any{"iss": ts.key.ID, "aud": Audience, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	with := func(k string, v any) map[string]any { c := valid(); c[k] = v; return c }
	cases := []struct {
		name string
		sign func(*http.Request, []byte)
		code core.Code
	}{
		{"missing", nil, core.CodeUnauthenticated},
		{"unknown scheme", header("Basic dXNlcjpwdw=="), core.CodeUnauthenticated},
		{"wrong secret", signAt(core.APIKey{ID: ts.key.ID, Secret: "wrong"}, now), core.CodeInvalidToken},
		{"unknown key", signAt(other, now), core.CodeInvalidToken},
		{"skewed past", signAt(ts.key, now.Add(-6*time.Minute)), core.CodeTokenExpired},
		{"skewed future", signAt(ts.key, now.Add(6*time.Minute)), core.CodeTokenExpired},
		{"wrong body hash", func(req *http.Request, _ []byte) {
			SignRequest(req, []byte(`{"name":"other"}`), ts.key.ID, ts.key.Secret, now)
		}, core.CodeInvalidToken},
		{"wrong path", func(req *http.Request, body []byte) {
			r2 := req.Clone(req.Context())
			r2.URL.Path = "/v1/keys"
			SignRequest(r2, body, ts.key.ID, ts.key.Secret, now)
			req.Header.Set("Authorization", r2.Header.Get("Authorization"))
		}, core.CodeInvalidToken},
		{"malformed hmac", header(HMACScheme + " key=x,ts=1"), core.CodeInvalidToken},
		{"wrong bearer", header("Bearer not-the-admin-token"), core.CodeInvalidToken},
		{"expired token", header("Bearer " + NewToken(ts.key.ID, ts.key.Secret, time.Minute, now.Add(-2*time.Minute))), core.CodeTokenExpired},
		{"token wrong secret", header("Bearer " + NewToken(ts.key.ID, "nope", time.Minute, now)), core.CodeInvalidToken},
		{"token alg none", header("Bearer " + tok(valid(), "none", "")), core.CodeInvalidToken},
		{"token alg HS512", header("Bearer " + tok(valid(), "HS512", ts.key.Secret)), core.CodeInvalidToken},
		{"token wrong aud", header("Bearer " + tok(with("aud", "other"), "HS256", ts.key.Secret)), core.CodeInvalidToken},
		{"token no exp", header("Bearer " + tok(with("exp", 0), "HS256", ts.key.Secret)), core.CodeInvalidToken},
		{"token too long-lived", header("Bearer " + tok(with("exp", now.Add(2*time.Hour).Unix()), "HS256", ts.key.Secret)), core.CodeInvalidToken},
		{"token issued in the future", header("Bearer " + tok(with("iat", now.Add(10*time.Minute).Unix()), "HS256", ts.key.Secret)), core.CodeTokenExpired},
		{"forged forward", header(""), core.CodeInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sign := tc.sign
			if tc.name == "forged forward" {
				sign = func(req *http.Request, _ []byte) {
					req.Header.Set(ForwardHeader, "node=n2,principal=admin,ts="+strconv.FormatInt(now.Unix(), 10)+",nonce=abcdefgh12,sig="+base64.StdEncoding.EncodeToString(make([]byte, 32)))
				}
			}
			st, b, h := ts.do(t, "POST", "/v1/rooms", `{"name":"r1"}`, sign)
			if st != http.StatusUnauthorized || errCode(t, b) != tc.code {
				t.Fatalf("got %d %s, want 401 %s", st, b, tc.code)
			}
			if h.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate")
			}
		})
	}
	if n := ts.b.count("create"); n != 0 {
		t.Fatalf("rejected requests created %d rooms", n)
	}
}

func TestAuthComesBeforeTheBody(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *Deps) { c.MaxBodyBytes = 10 })
	big := `{"name":"` + strings.Repeat("x", 100) + `"}`
	for _, sign := range []func(*http.Request, []byte){nil, func(r *http.Request, _ []byte) { r.Header.Set("Authorization", "Bearer wrong") }} {
		if st, b, _ := ts.do(t, "POST", "/v1/rooms", big, sign); st != http.StatusUnauthorized {
			t.Fatalf("oversized body without valid credentials: %d %s", st, b)
		}
	}
	if st, b, _ := ts.do(t, "POST", "/v1/rooms", big, ts.bearer); st != http.StatusRequestEntityTooLarge || errCode(t, b) != core.CodeMessageTooLarge {
		t.Fatalf("oversized body with a token: %d %s", st, b)
	}
	if st, b, _ := ts.do(t, "POST", "/v1/rooms", big, ts.hmacSigned); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized signed body: %d %s", st, b)
	}
}

func TestAuthRejectsReplay(t *testing.T) {
	ts := newTestServer(t, nil)
	var saved string
	st, b, _ := ts.do(t, "POST", "/v1/rooms", `{"name":"r1"}`, func(req *http.Request, body []byte) {
		ts.hmacSigned(req, body)
		saved = req.Header.Get("Authorization")
	})
	if st != http.StatusCreated {
		t.Fatalf("%d %s", st, b)
	}
	st, b, _ = ts.do(t, "POST", "/v1/rooms", `{"name":"r1"}`, func(req *http.Request, _ []byte) { req.Header.Set("Authorization", saved) })
	if st != http.StatusUnauthorized || errCode(t, b) != core.CodeInvalidToken {
		t.Fatalf("replay: %d %s", st, b)
	}
	if n := ts.b.count("create"); n != 1 {
		t.Fatalf("create ran %d times", n)
	}
}

func TestRevokedKeyIsRejected(t *testing.T) {
	ts := newTestServer(t, nil)
	st, b, _ := ts.do(t, "DELETE", "/v1/keys/"+ts.key.ID, "", adminBearer)
	if st != http.StatusOK {
		t.Fatalf("revoke: %d %s", st, b)
	}
	st, b, _ = ts.do(t, "GET", "/v1/rooms", "", ts.bearer)
	if st != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d %s", st, b)
	}
}

func TestKeyManagementNeedsAdmin(t *testing.T) {
	ts := newTestServer(t, nil)
	st, b, _ := ts.do(t, "POST", "/v1/keys", `{"name":"x"}`, ts.hmacSigned)
	if st != http.StatusForbidden || errCode(t, b) != core.CodeForbidden {
		t.Fatalf("api key creating keys: %d %s", st, b)
	}
	st, b, _ = ts.do(t, "POST", "/v1/keys", `{"name":"site"}`, adminBearer)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, b)
	}
	var k core.APIKey
	if err := json.Unmarshal(b, &k); err != nil || !strings.HasPrefix(k.ID, "AK") || len(k.Secret) < 40 {
		t.Fatalf("created key %+v (%v)", k, err)
	}
	st, b, _ = ts.do(t, "GET", "/v1/keys", "", adminBearer)
	if st != http.StatusOK || !bytes.Contains(b, []byte(k.ID)) || bytes.Contains(b, []byte(k.Secret)) || bytes.Contains(b, []byte(`"secret"`)) {
		t.Fatalf("list: %d %s", st, b)
	}
	// The new key works at once.
	st, b, _ = ts.do(t, "GET", "/v1/rooms", "", func(req *http.Request, body []byte) { SignRequest(req, body, k.ID, k.Secret, time.Now()) })
	if st != http.StatusOK {
		t.Fatalf("new key: %d %s", st, b)
	}
}

func TestNonceCacheIsBounded(t *testing.T) {
	c := newNonceCache(3)
	now := time.Now()
	for i := range 3 {
		if err := c.remember("n"+strconv.Itoa(i), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.remember("n9", now.Add(time.Minute), now); core.CodeOf(err) != core.CodeRateLimited {
		t.Fatalf("full cache: %v", err)
	}
	later := now.Add(2 * time.Minute)
	if err := c.remember("n9", later.Add(time.Minute), later); err != nil || c.len() != 1 {
		t.Fatalf("after expiry: %v, %d kept", err, c.len())
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"", "Bearer abc", "Bearer a.b.c", "bearer  x", HMACScheme + " key=AK1,ts=1700000000,nonce=abcdefgh,sig=" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		HMACScheme + " key=AK1,key=AK2", HMACScheme + " ts=-1", "Basic x", HMACScheme + " key=,ts=,nonce=,sig=",
		HMACScheme + " key=AK1, ts=+5, nonce=aaaaaaaa, sig=AAAA", "Bearer " + strings.Repeat("a", 5000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := parseAuthorization(h)
		if err != nil {
			if code := core.CodeOf(err); code != core.CodeUnauthenticated && code != core.CodeInvalidToken {
				t.Fatalf("code %s", code)
			}
			return
		}
		if c.hmac != nil {
			p := c.hmac
			if p.Key == "" || p.TS <= 0 || len(p.Nonce) < 8 || len(p.Sig) != 32 {
				t.Fatalf("accepted incomplete %+v", p)
			}
		} else if c.bearer == "" {
			t.Fatal("accepted empty bearer")
		}
		// A bearer that is not a token must fail verification cleanly.
		s := &Server{cfg: DefaultConfig(), deps: Deps{}}
		if c.bearer != "" {
			if _, err := s.verifyToken(c.bearer, time.Now()); err == nil {
				t.Fatal("verified a token without keys")
			}
		}
	})
}
