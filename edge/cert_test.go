package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGeneratedCertificate(t *testing.T) {
	t.Parallel()
	c, err := newCertSource("", "", []string{"meet.example.org", "192.0.2.7"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cert, _ := c.getCertificate(nil)
	leaf := cert.Leaf
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d >= 14*24*time.Hour {
		t.Fatalf("valid for %s; browsers refuse pinned certificates valid 14 days or more", d)
	}
	if time.Now().Before(leaf.NotBefore) || time.Now().After(leaf.NotAfter) {
		t.Fatalf("not valid now: %s..%s", leaf.NotBefore, leaf.NotAfter)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost", "meet.example.org", "192.0.2.7"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("host %s: %v", host, err)
		}
	}
	sum := sha256.Sum256(leaf.Raw)
	ci := c.info()
	if ci.Hex != hex.EncodeToString(sum[:]) || ci.Base64 != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("hash %+v does not match the DER leaf", ci.CertHash)
	}
	if !ci.Pin || !ci.SelfSigned || len(ci.Hashes) != 1 {
		t.Fatalf("info %+v", ci)
	}
}

func TestCertRotationAnnouncesThenSwaps(t *testing.T) {
	t.Parallel()
	c, err := newCertSourceTimes("", "", nil, slog.New(slog.DiscardHandler),
		certTimes{validity: 6 * time.Second, renew: 2 * time.Second, announce: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := c.info()
	var announced CertInfo
	deadline := time.Now().Add(8 * time.Second)
	for {
		ci := c.info()
		if len(ci.Hashes) == 2 && announced.Hex == "" {
			announced = ci
			if ci.Hex != first.Hex || ci.Hashes[1].Hex == first.Hex {
				t.Fatalf("announcement %+v: want current %s plus a new one", ci, first.Hex)
			}
		}
		if ci.Hex != first.Hex {
			if announced.Hex == "" {
				t.Fatal("swapped without announcing the next certificate first")
			}
			if ci.Hex != announced.Hashes[1].Hex {
				t.Fatalf("swapped to %s, announced %s", ci.Hex, announced.Hashes[1].Hex)
			}
			cert, _ := c.getCertificate(nil)
			if hashOf(cert.Leaf).Hex != ci.Hex {
				t.Fatal("served certificate is not the one described")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no rotation")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOperatorCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		validity time.Duration
		pin      bool
	}{
		{"short", 10 * 24 * time.Hour, true},
		{"long", 90 * 24 * time.Hour, false},
	} {
		certFile, keyFile := writeSelfSigned(t, dir, tc.name, tc.validity)
		c, err := newCertSource(certFile, keyFile, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ci := c.info()
		c.Close()
		if ci.SelfSigned || ci.Pin != tc.pin {
			t.Errorf("%s: info %+v, want pin %v and not generated", tc.name, ci, tc.pin)
		}
	}
	if _, err := newCertSource(filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key"), nil, nil); err == nil {
		t.Fatal("missing certificate files accepted")
	}
}

func writeSelfSigned(t *testing.T, dir, name string, validity time.Duration) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(validity),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
