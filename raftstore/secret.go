package raftstore

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// secretPrefix marks a Parley cluster secret, version 1.
const secretPrefix = "parley-cluster-v1:"

const secretBytes = 32

// GenerateSecret returns a new cluster secret: 256 random bits in a
// printable form. `parley cluster init` prints it; every node of the
// cluster is given the same secret. Whoever holds it can join the cluster
// and read its state, so it is stored like a private key.
func GenerateSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("raftstore: generate secret: %w", err)
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// ParseSecret checks the form of a cluster secret and returns its bytes.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), secretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: cluster secret must start with %q (make one with GenerateSecret)", ErrInvalidConfig, secretPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) != secretBytes {
		return nil, fmt.Errorf("%w: cluster secret is malformed", ErrInvalidConfig)
	}
	return b, nil
}

// SecretFingerprint returns a short, non-secret fingerprint of the CA that
// secret derives, for operators to check that nodes share a secret.
func SecretFingerprint(secret string) (string, error) {
	b, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	_, key, err := deriveCA(b)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return hex.EncodeToString(sum[:8]), nil
}

// The CA derived from a secret is identical on every node: its key comes
// from HKDF-SHA256 over the secret, and every certificate field is fixed.
// Ed25519 signatures are deterministic, so the certificate bytes are too.
var (
	caNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	caNotAfter  = time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC)
)

func deriveCA(secret []byte) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, secret, []byte("parley cluster"), "parley raft ca v1", ed25519.SeedSize)
	if err != nil {
		return nil, nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Parley cluster CA " + hex.EncodeToString(sum[:8])},
		NotBefore:             caNotBefore,
		NotAfter:              caNotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
		SubjectKeyId:          sum[:20],
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: derive cluster CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// issueLeaf makes a fresh key and a certificate for name signed by the CA.
func issueLeaf(ca *x509.Certificate, caKey ed25519.PrivateKey, name string) (tls.Certificate, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raftstore: issue certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// credentials are the TLS configurations of one cluster member: the same
// certificate serves both directions, and both directions demand one back.
type credentials struct {
	server *tls.Config
	client *tls.Config
}

// secretCredentials derives the cluster CA from secret and issues name a
// certificate under it.
func secretCredentials(secret, name string) (*credentials, error) {
	b, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	ca, caKey, err := deriveCA(b)
	if err != nil {
		return nil, err
	}
	leaf, err := issueLeaf(ca, caKey, name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return newCredentials(leaf, pool), nil
}

// fileCredentials loads an operator's CA and this node's key pair.
func fileCredentials(f *TLSFiles) (*credentials, error) {
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrInvalidConfig, f.CAFile)
	}
	leaf, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return newCredentials(leaf, pool), nil
}

func newCredentials(leaf tls.Certificate, pool *x509.CertPool) *credentials {
	verify := func(cs tls.ConnectionState) error { return verifyPeer(cs, pool) }
	base := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{leaf},
		// Chains are checked in VerifyConnection against the cluster CA
		// alone, with no host name: peers are identified by certificate,
		// not by address.
		InsecureSkipVerify: true,
		VerifyConnection:   verify,
	}
	server := base.Clone()
	server.ClientAuth = tls.RequireAnyClientCert
	return &credentials{server: server, client: base.Clone()}
}

// verifyPeer checks that the peer's certificate chains to the cluster CA.
func verifyPeer(cs tls.ConnectionState, pool *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: no certificate", ErrUnauthorized)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if cs.PeerCertificates[0].Subject.CommonName == "" {
		return fmt.Errorf("%w: certificate names no node", ErrUnauthorized)
	}
	return nil
}

// peerName returns the node id a verified connection's certificate names.
func peerName(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}
