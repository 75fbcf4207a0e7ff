package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// clientTLS is the TLS configuration of both transports: the one given with
// WithTLSConfig (or the defaults) offering alpn, with certificate pinning
// when hashes were given.
func (cfg *config) clientTLS(alpn string) *tls.Config {
	tc := &tls.Config{}
	if cfg.tls != nil {
		tc = cfg.tls.Clone()
	}
	tc.NextProtos = []string{alpn}
	if len(cfg.certHashes) > 0 {
		// Verified by hash instead, as a browser does with
		// serverCertificateHashes. The handshake still proves the server
		// holds the certificate's key.
		tc.InsecureSkipVerify = true
		now := tc.Time
		if now == nil {
			now = time.Now
		}
		tc.VerifyPeerCertificate = verifyPinned(cfg.certHashes, now)
	}
	return tc
}

// verifyPinned accepts a leaf certificate whose SHA-256 is one of hashes
// and that is valid now; the chain, the issuer and the names are not
// checked.
func verifyPinned(hashes [][]byte, now func() time.Time) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("client: server sent no certificate")
		}
		sum := sha256.Sum256(raw[0])
		if !slices.ContainsFunc(hashes, func(h []byte) bool { return bytes.Equal(h, sum[:]) }) {
			return fmt.Errorf("client: server certificate sha-256 %x is not pinned", sum)
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("client: parse server certificate: %w", err)
		}
		if t := now(); t.Before(leaf.NotBefore) || t.After(leaf.NotAfter) {
			return fmt.Errorf("client: pinned server certificate is not valid now (valid %s to %s)",
				leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
		}
		return nil
	}
}

// FetchCertHashes gets the certificate hashes a Parley server publishes at
// GET /v1/cert-hash (url is that endpoint, for example
// http://localhost:7880/v1/cert-hash), ready for WithCertHash. It is meant for
// development servers with a generated certificate: fetched over plain HTTP,
// the hashes are only as trustworthy as the network. A server whose
// certificate chains to a trusted root needs no pinning.
func FetchCertHashes(ctx context.Context, url string) ([][]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("client: cert hashes: %w", err)
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: cert hashes: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client: cert hashes: %s from %s", resp.Status, url)
	}
	var body struct {
		Hashes []struct {
			Algorithm string `json:"algorithm"`
			Hex       string `json:"hex"`
		} `json:"hashes"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return nil, fmt.Errorf("client: cert hashes: decode: %w", err)
	}
	var out [][]byte
	for _, h := range body.Hashes {
		b, err := hex.DecodeString(h.Hex)
		if h.Algorithm != "sha-256" || err != nil || len(b) != sha256.Size {
			continue // not one we can pin
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("client: cert hashes: no sha-256 hash at %s", url)
	}
	return out, nil
}
