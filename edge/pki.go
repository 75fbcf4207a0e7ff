package edge

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley/core"
)

// SigningKeySource gives the cluster's webhook signing keys, the active one
// first. It is called from HTTP handlers, concurrently.
type SigningKeySource interface {
	SigningKeys() []core.SigningKey
}

// PKIKey describes one public signing key at GET /pki.
type PKIKey struct {
	ID        string    `json:"id"`
	Alg       string    `json:"alg"`        // "Ed25519"
	PublicKey string    `json:"public_key"` // raw 32-byte key, standard base64
	PEM       string    `json:"pem"`        // SubjectPublicKeyInfo, "PUBLIC KEY" block
	Active    bool      `json:"active"`
	Created   time.Time `json:"created"`
}

// PKI is the JSON document at GET /pki: Key is the active public key (raw,
// standard base64), Keys all keys webhooks are currently signed with.
type PKI struct {
	Key  string   `json:"key"`
	Keys []PKIKey `json:"keys"`
}

// pemType is the media type of the PEM form.
const pemType = "application/x-pem-file"

// PKIHandler serves the public halves of the webhook signing keys at GET
// (and HEAD) /pki: JSON (PKI) by default; the PEM blocks alone with
// ?format=pem or "Accept: application/x-pem-file". No private material is
// ever served. 503 when there is no key yet.
func PKIHandler(keys SigningKeySource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, core.Errorf(core.CodeBadRequest, "method %s not allowed", r.Method))
			return
		}
		doc := pkiDoc(keys.SigningKeys())
		if len(doc.Keys) == 0 {
			writeError(w, http.StatusServiceUnavailable, core.Errorf(core.CodeUnavailable, "no webhook signing key yet"))
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Add("Vary", "Accept")
		if wantPEM(r) {
			var b strings.Builder
			for _, k := range doc.Keys {
				b.WriteString(k.PEM)
			}
			ct := "text/plain; charset=utf-8"
			if strings.Contains(r.Header.Get("Accept"), pemType) {
				ct = pemType
			}
			h.Set("Content-Type", ct)
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write([]byte(b.String()))
			}
			return
		}
		if r.Method == http.MethodHead {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			return
		}
		writePKIJSON(w, doc)
	})
}

func wantPEM(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "pem":
		return true
	case "json":
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), pemType)
}

// writePKIJSON writes doc, keeping the cache lifetime PKIHandler set
// (writeJSON forbids caching).
func writePKIJSON(w http.ResponseWriter, doc PKI) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(doc)
}

// pkiDoc describes keys; keys without a valid private half are skipped.
func pkiDoc(keys []core.SigningKey) PKI {
	doc := PKI{Keys: []PKIKey{}}
	for _, k := range keys {
		pub := k.Public()
		if pub == nil {
			continue
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			continue
		}
		raw := base64.StdEncoding.EncodeToString(pub)
		doc.Keys = append(doc.Keys, PKIKey{
			ID: k.ID, Alg: "Ed25519", PublicKey: raw, Active: k.Active, Created: k.Created,
			PEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		})
		if k.Active && doc.Key == "" {
			doc.Key = raw
		}
	}
	if doc.Key == "" && len(doc.Keys) > 0 {
		doc.Key = doc.Keys[0].PublicKey
	}
	return doc
}
