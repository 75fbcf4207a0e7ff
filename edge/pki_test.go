package edge

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/core"
)

type keyList []core.SigningKey

func (k keyList) SigningKeys() []core.SigningKey { return k }

func newKey(t *testing.T, active bool) core.SigningKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return core.SigningKey{ID: "k" + base64.RawURLEncoding.EncodeToString(priv[32:36]), Private: priv, Created: time.Now().UTC(), Active: active}
}

func TestPKIServesPublicKeysOnly(t *testing.T) {
	t.Parallel()
	active, old := newKey(t, true), newKey(t, false)
	srv := httptest.NewServer(PKIHandler(keyList{active, old}))
	defer srv.Close()

	get := func(path, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer rsp.Body.Close()
		b, _ := io.ReadAll(rsp.Body)
		return rsp, b
	}

	rsp, body := get("/pki", "")
	if rsp.StatusCode != 200 || rsp.Header.Get("Content-Type") != "application/json" || !strings.Contains(rsp.Header.Get("Cache-Control"), "max-age=60") {
		t.Fatalf("GET /pki: %d %q %q", rsp.StatusCode, rsp.Header.Get("Content-Type"), rsp.Header.Get("Cache-Control"))
	}
	var doc PKI
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	wantActive := base64.StdEncoding.EncodeToString(active.Public())
	if doc.Key != wantActive || len(doc.Keys) != 2 || !doc.Keys[0].Active || doc.Keys[1].Active || doc.Keys[0].Alg != "Ed25519" {
		t.Fatalf("doc %+v", doc)
	}
	for i, k := range []core.SigningKey{active, old} {
		raw, _ := base64.StdEncoding.DecodeString(doc.Keys[i].PublicKey)
		if !ed25519.PublicKey(raw).Equal(k.Public()) || doc.Keys[i].ID != k.ID {
			t.Fatalf("key %d: raw key or id differ", i)
		}
		blk, _ := pem.Decode([]byte(doc.Keys[i].PEM))
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil || !pub.(ed25519.PublicKey).Equal(k.Public()) {
			t.Fatalf("key %d: pem: %v", i, err)
		}
	}
	// No private material, in any encoding.
	for _, k := range []core.SigningKey{active, old} {
		for _, enc := range []string{base64.StdEncoding.EncodeToString(k.Private), base64.StdEncoding.EncodeToString(k.Private.Seed()), "private"} {
			if strings.Contains(strings.ToLower(string(body)), strings.ToLower(enc)) {
				t.Fatalf("private material %q in /pki", enc)
			}
		}
	}

	for _, tc := range []struct{ path, accept, ctype string }{
		{"/pki?format=pem", "", "text/plain; charset=utf-8"},
		{"/pki", "application/x-pem-file", "application/x-pem-file"},
	} {
		rsp, body := get(tc.path, tc.accept)
		if rsp.StatusCode != 200 || rsp.Header.Get("Content-Type") != tc.ctype {
			t.Fatalf("%s (%s): %d %q", tc.path, tc.accept, rsp.StatusCode, rsp.Header.Get("Content-Type"))
		}
		var n int
		for rest := body; ; n++ {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "PUBLIC KEY" {
				t.Fatalf("block type %q", blk.Type)
			}
		}
		if n != 2 {
			t.Fatalf("%s: %d PEM blocks, want 2", tc.path, n)
		}
	}

	rsp, err := http.Head(srv.URL + "/pki")
	if err != nil || rsp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", rsp, err)
	}
	rsp.Body.Close()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, srv.URL+"/pki", strings.NewReader("x"))
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusMethodNotAllowed || rsp.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("%s: %d, Allow %q", m, rsp.StatusCode, rsp.Header.Get("Allow"))
		}
	}
}

func TestPKIWithoutKeys(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	PKIHandler(keyList{{ID: "broken", Private: []byte("short")}}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/pki", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("no usable key: %d %s", rec.Code, rec.Body)
	}
}
