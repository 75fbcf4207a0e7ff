package edge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Browsers accept a certificate pinned with serverCertificateHashes only if
// it is valid for at most 14 days; Chromium rejects 15. The generated
// certificate lives 10 days and is replaced 3 days before it expires; the
// replacement is announced (its hash served beside the current one) for
// certAnnounce before it is used, so a client that fetched the hashes just
// before the swap still accepts the certificate it is shown.
const (
	certValidity = 10 * 24 * time.Hour
	certRenew    = 3 * 24 * time.Hour
	certAnnounce = 10 * time.Minute
	// certBackdate covers clocks slightly behind ours.
	certBackdate = time.Hour
	maxPinnable  = 14 * 24 * time.Hour
)

// CertHash describes one certificate by the SHA-256 of its DER leaf, in the
// shapes a browser's serverCertificateHashes and a Go client need.
type CertHash struct {
	// Algorithm is always "sha-256".
	Algorithm string `json:"algorithm"`
	// Hex and Base64 (standard, padded) encode the same 32 bytes.
	Hex       string    `json:"hex"`
	Base64    string    `json:"base64"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// CertInfo is what GET /v1/cert-hash serves: the certificate HTTP/3 shows
// now and every hash a client should accept.
type CertInfo struct {
	CertHash
	// Pin is true when browsers must pass Hashes as serverCertificateHashes
	// (a self-signed certificate valid for at most 14 days); false for an
	// operator certificate that chains to a trusted root.
	Pin bool `json:"pin"`
	// SelfSigned is true for the generated certificate.
	SelfSigned bool `json:"self_signed"`
	// Hashes lists the current certificate and, shortly before a rotation,
	// the next one.
	Hashes []CertHash `json:"hashes"`
}

// certPair is one certificate ready to serve, with its hash.
type certPair struct {
	cert *tls.Certificate
	hash CertHash
}

// certState is swapped atomically: the certificate served and the one
// announced to replace it (nil outside the announcement window).
type certState struct {
	current, next *certPair
	pin, self     bool
}

// certTimes sets the lifetime of generated certificates; tests shorten it.
type certTimes struct {
	validity, renew, announce time.Duration
}

// certSource serves the HTTP/3 certificate: the operator's, or a generated
// one it rotates in the background.
type certSource struct {
	state atomic.Pointer[certState]
	hosts []string
	times certTimes
	log   *slog.Logger
	now   func() time.Time

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// newCertSource loads certFile/keyFile, or generates a certificate for
// localhost, 127.0.0.1, ::1 and hosts when both are empty.
func newCertSource(certFile, keyFile string, hosts []string, log *slog.Logger) (*certSource, error) {
	return newCertSourceTimes(certFile, keyFile, hosts, log,
		certTimes{validity: certValidity, renew: certRenew, announce: certAnnounce})
}

func newCertSourceTimes(certFile, keyFile string, hosts []string, log *slog.Logger, t certTimes) (*certSource, error) {
	c := &certSource{hosts: hosts, times: t, log: log, now: time.Now, stop: func() {}}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("edge: load tls certificate: %w", err)
		}
		p, err := pairOf(&cert)
		if err != nil {
			return nil, err
		}
		c.state.Store(&certState{current: p, pin: pinnable(p.cert.Leaf)})
		return c, nil
	}
	p, err := c.generate(c.now())
	if err != nil {
		return nil, err
	}
	c.state.Store(&certState{current: p, pin: true, self: true})
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.wg.Go(func() { c.rotate(ctx) })
	return c, nil
}

// Close stops rotation.
func (c *certSource) Close() {
	c.stop()
	c.wg.Wait()
}

// getCertificate is tls.Config.GetCertificate: whatever is current now, so
// a rotation applies to the next handshake and leaves live sessions alone.
func (c *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.state.Load().current.cert, nil
}

// info describes the current certificate and the hashes to accept.
func (c *certSource) info() CertInfo {
	st := c.state.Load()
	ci := CertInfo{CertHash: st.current.hash, Pin: st.pin, SelfSigned: st.self, Hashes: []CertHash{st.current.hash}}
	if st.next != nil {
		ci.Hashes = append(ci.Hashes, st.next.hash)
	}
	return ci
}

// rotate announces and then installs a fresh certificate before the
// current one expires, until ctx ends.
func (c *certSource) rotate(ctx context.Context) {
	for {
		st := c.state.Load()
		switchAt := st.current.hash.NotAfter.Add(-c.times.renew)
		wait := switchAt.Add(-c.times.announce).Sub(c.now())
		if st.next != nil {
			wait = switchAt.Sub(c.now())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		next := &certState{pin: true, self: true}
		if st.next == nil {
			p, err := c.generate(c.now())
			if err != nil {
				c.log.Error("generate next http/3 certificate; retrying in a minute", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Minute):
				}
				continue
			}
			next.current, next.next = st.current, p
		} else {
			next.current = st.next
			c.log.Info("http/3 certificate rotated", "sha256", st.next.hash.Hex, "not_after", st.next.hash.NotAfter)
		}
		c.state.Store(next)
	}
}

// generate makes a self-signed ECDSA P-256 certificate valid from now
// (backdated a little) for the configured lifetime.
func (c *certSource) generate(now time.Time) (*certPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("edge: generate certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("edge: certificate serial: %w", err)
	}
	backdate := min(certBackdate, c.times.validity/10)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "parley", Organization: []string{"Parley development"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(c.times.validity - backdate),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range c.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("edge: create certificate: %w", err)
	}
	return pairOf(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
}

// pairOf parses cert's leaf and computes its hash.
func pairOf(cert *tls.Certificate) (*certPair, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("edge: tls certificate has no leaf")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("edge: parse tls certificate: %w", err)
	}
	cert.Leaf = leaf
	return &certPair{cert: cert, hash: hashOf(leaf)}, nil
}

func hashOf(leaf *x509.Certificate) CertHash {
	sum := sha256.Sum256(leaf.Raw)
	return CertHash{
		Algorithm: "sha-256", Hex: hex.EncodeToString(sum[:]), Base64: base64.StdEncoding.EncodeToString(sum[:]),
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
	}
}

// pinnable reports whether a browser could accept leaf by its hash alone:
// self-signed and valid for at most 14 days.
func pinnable(leaf *x509.Certificate) bool {
	if leaf.NotAfter.Sub(leaf.NotBefore) > maxPinnable || !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		return false
	}
	return leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
}
