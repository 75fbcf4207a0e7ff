package whtest

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"
)

func TestParseKeys(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	pub2, _, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]any{
		{"id": "k1", "pem": pemText, "public_key": base64.StdEncoding.EncodeToString(pub)},
		{"id": "k2", "public_key": base64.StdEncoding.EncodeToString(pub2)},
	}})
	keys, err := ParseKeys(doc)
	if err != nil || len(keys) != 2 {
		t.Fatalf("json: %d keys, %v", len(keys), err)
	}
	if keys, err := ParseKeys([]byte(pemText)); err != nil || len(keys) != 1 || !keys[0].Equal(pub) {
		t.Fatalf("pem: %v %v", keys, err)
	}
	if _, err := ParseKeys([]byte(`{"keys":[]}`)); err == nil {
		t.Fatal("no keys: want an error")
	}
}

func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{`{"keys":[{"public_key":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}]}`, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n", `[`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeys(b)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				t.Fatalf("key of %d bytes", len(k))
			}
		}
	})
}
