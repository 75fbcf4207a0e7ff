// Package whtest is a webhook receiver for tests: a real HTTP server on
// loopback that verifies every request it gets with core/whsig (Ed25519
// against the keys a node serves at GET /pki, and HMAC with the target's
// secret), records what arrived, and can be switched to fail (an HTTP
// status, a dropped connection, or a request that hangs) to exercise the
// retries, the dead-letter list and the timeouts of the delivery worker.
//
// Only tests import it.
package whtest

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/core/whsig"
)

// Mode is how the receiver answers.
type Mode struct {
	// Status is the HTTP status answered; 0 means 200.
	Status int
	// Drop closes the connection without an answer.
	Drop bool
	// Hang holds the request until the client gives up (or the receiver
	// closes).
	Hang bool
	// Delay holds each request this long before answering (a slow
	// receiver).
	Delay time.Duration
}

// Request is one request the receiver got.
type Request struct {
	ID        string // webhook-id
	Timestamp string // webhook-timestamp
	Signature string // webhook-signature
	Body      []byte
	At        time.Time
	Answered  int // the status answered; 0 when dropped or hung

	// Type is the body's "type"; Data its "data" object; EventAt its
	// "timestamp" (when the node saw the change).
	Type    string
	Data    map[string]any
	EventAt time.Time
	// V1A counts the Ed25519 ("v1a") signatures of the request, V1A
	// Valid those that verify with one of the keys; V1 counts the HMAC
	// ones.
	V1A, V1AValid, V1 int
	// Err says what did not verify; empty when everything did.
	Err string
}

// Field returns a string field of the body's data.
func (r Request) Field(name string) string {
	s, _ := r.Data[name].(string)
	return s
}

// Receiver is a webhook receiver. Its methods are safe for concurrent use.
type Receiver struct {
	addr   string
	secret string

	mu      sync.Mutex
	srv     *http.Server // nil while down
	keys    func() ([]ed25519.PublicKey, error)
	mode    Mode
	reqs    []Request
	changed chan struct{} // closed and replaced on each request
	closing chan struct{}
}

// New starts a receiver on a free loopback port. secret is the HMAC
// secret the target is configured with ("" for none: then a v1 signature
// is an error); keys returns the public keys v1a signatures must verify
// with (typically FetchKeys of a node's /pki), called per request. It
// panics when it cannot listen, as httptest.NewServer does.
func New(secret string, keys func() ([]ed25519.PublicKey, error)) *Receiver {
	r := &Receiver{secret: secret, keys: keys, changed: make(chan struct{}), closing: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("whtest: listen: %v", err))
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	return r
}

func (r *Receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// URL returns the receiver's base URL.
func (r *Receiver) URL() string { return "http://" + r.addr }

// Host returns the receiver's host:port.
func (r *Receiver) Host() string { return r.addr }

// Down stops listening and drops every connection: POSTs are refused
// until Up.
func (r *Receiver) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens again on the same address after Down.
func (r *Receiver) Up() error {
	var ln net.Listener
	var err error
	for range 100 { // the port may linger for a moment
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			r.serve(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("whtest: listen again on %s: %w", r.addr, err)
}

// Close stops the receiver; hung requests return.
func (r *Receiver) Close() {
	r.mu.Lock()
	select {
	case <-r.closing:
	default:
		close(r.closing)
	}
	r.mu.Unlock()
	r.Down()
}

// SetMode changes how the receiver answers from now on.
func (r *Receiver) SetMode(m Mode) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
}

// SetKeys replaces the key source.
func (r *Receiver) SetKeys(keys func() ([]ed25519.PublicKey, error)) {
	r.mu.Lock()
	r.keys = keys
	r.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	body, err := io.ReadAll(hr.Body)
	rec := Request{
		ID: hr.Header.Get("webhook-id"), Timestamp: hr.Header.Get("webhook-timestamp"),
		Signature: hr.Header.Get("webhook-signature"), Body: body, At: time.Now(),
	}
	r.mu.Lock()
	mode, keys := r.mode, r.keys
	r.mu.Unlock()
	var errs []string
	if err != nil {
		errs = append(errs, "read body: "+err.Error())
	}
	if hr.Method != http.MethodPost {
		errs = append(errs, "method "+hr.Method)
	}
	if ct := hr.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		errs = append(errs, "content-type "+ct)
	}
	var doc struct {
		Type      string         `json:"type"`
		Timestamp time.Time      `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		errs = append(errs, "body: "+err.Error())
	}
	rec.Type, rec.Data, rec.EventAt = doc.Type, doc.Data, doc.Timestamp
	errs = append(errs, r.verify(&rec, keys)...)
	rec.Err = strings.Join(errs, "; ")
	if mode.Delay > 0 {
		select {
		case <-hr.Context().Done():
		case <-r.closing:
		case <-time.After(mode.Delay):
		}
	}
	switch {
	case mode.Drop:
		r.record(rec)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case mode.Hang:
		r.record(rec)
		select {
		case <-hr.Context().Done():
		case <-r.closing:
		}
		return
	}
	rec.Answered = mode.Status
	if rec.Answered == 0 {
		rec.Answered = http.StatusOK
	}
	r.record(rec)
	w.WriteHeader(rec.Answered)
}

// verify checks the signatures of a request and counts them by version.
func (r *Receiver) verify(rec *Request, keys func() ([]ed25519.PublicKey, error)) []string {
	var errs []string
	if rec.ID == "" || rec.Timestamp == "" {
		errs = append(errs, "webhook-id or webhook-timestamp missing")
	}
	for _, f := range strings.Fields(rec.Signature) {
		switch {
		case strings.HasPrefix(f, whsig.VersionEd25519+","):
			rec.V1A++
		case strings.HasPrefix(f, whsig.VersionHMAC+","):
			rec.V1++
		}
	}
	if rec.V1A == 0 {
		errs = append(errs, "no v1a signature")
	} else if keys == nil {
		errs = append(errs, "no key source")
	} else if pub, err := keys(); err != nil {
		errs = append(errs, "fetch keys: "+err.Error())
	} else {
		for _, f := range strings.Fields(onlyVersion(rec.Signature, whsig.VersionEd25519)) {
			if whsig.Verify(f, rec.ID, rec.Timestamp, rec.Body, "", pub...) == nil {
				rec.V1AValid++
			}
		}
		if rec.V1AValid == 0 {
			errs = append(errs, fmt.Sprintf("v1a: none of %d signatures verifies with the %d keys", rec.V1A, len(pub)))
		}
	}
	switch {
	case r.secret != "" && rec.V1 == 0:
		errs = append(errs, "no v1 signature")
	case r.secret == "" && rec.V1 > 0:
		errs = append(errs, "v1 signature without a secret")
	case r.secret != "":
		if err := whsig.Verify(onlyVersion(rec.Signature, whsig.VersionHMAC), rec.ID, rec.Timestamp, rec.Body, r.secret); err != nil {
			errs = append(errs, "v1: "+err.Error())
		}
	}
	return errs
}

// onlyVersion keeps the signatures of one version in a header value.
func onlyVersion(header, version string) string {
	var out []string
	for _, f := range strings.Fields(header) {
		if strings.HasPrefix(f, version+",") {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

func (r *Receiver) record(rec Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Requests returns every request so far, in arrival order.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// Acked returns the requests answered with a 2xx status, in arrival order.
func (r *Receiver) Acked() []Request {
	var out []Request
	for _, q := range r.Requests() {
		if q.Answered/100 == 2 {
			out = append(out, q)
		}
	}
	return out
}

// Unique returns the acknowledged requests with duplicates (same
// webhook-id) left out, keeping the first arrival of each.
func (r *Receiver) Unique() []Request {
	seen := map[string]bool{}
	var out []Request
	for _, q := range r.Acked() {
		if !seen[q.ID] {
			seen[q.ID] = true
			out = append(out, q)
		}
	}
	return out
}

// Errors returns the verification errors of every request, with the
// request's id.
func (r *Receiver) Errors() []string {
	var out []string
	for _, q := range r.Requests() {
		if q.Err != "" {
			out = append(out, q.ID+": "+q.Err)
		}
	}
	return out
}

// Wait waits until cond holds over the requests, or ctx ends.
func (r *Receiver) Wait(ctx context.Context, cond func([]Request) bool) error {
	for {
		r.mu.Lock()
		reqs, changed := slices.Clone(r.reqs), r.changed
		r.mu.Unlock()
		if cond(reqs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("whtest: %d requests so far: %w", len(reqs), ctx.Err())
		case <-changed:
		}
	}
}

// FetchKeys reads the Ed25519 public keys served at pkiURL (a node's
// GET /pki): every PEM "PUBLIC KEY" block and every JSON string that is
// the base64 of 32 bytes, de-duplicated.
func FetchKeys(ctx context.Context, pkiURL string) ([]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pkiURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", pkiURL, resp.Status, strings.TrimSpace(string(b)))
	}
	return ParseKeys(b)
}

// ParseKeys extracts the Ed25519 public keys of a /pki document (see
// FetchKeys).
func ParseKeys(b []byte) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	add := func(k ed25519.PublicKey) {
		for _, o := range out {
			if o.Equal(k) {
				return
			}
		}
		out = append(out, k)
	}
	var strs []string
	var doc any
	if json.Unmarshal(b, &doc) == nil {
		collectStrings(doc, &strs)
	} else {
		strs = []string{string(b)}
	}
	for _, s := range strs {
		rest := []byte(s)
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if pub, err := x509.ParsePKIXPublicKey(blk.Bytes); err == nil {
				if k, ok := pub.(ed25519.PublicKey); ok {
					add(k)
				}
			}
		}
		if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s)); err == nil && len(raw) == ed25519.PublicKeySize {
			add(ed25519.PublicKey(raw))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("whtest: no Ed25519 public key in %.200q", b)
	}
	return out, nil
}

func collectStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case []any:
		for _, e := range x {
			collectStrings(e, out)
		}
	case map[string]any:
		for _, e := range x {
			collectStrings(e, out)
		}
	}
}
