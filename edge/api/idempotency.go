package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
)

// IdempotencyHeader names the key that makes a retried request return the
// first response; ReplayedHeader marks such a replay.
const (
	IdempotencyHeader = "Idempotency-Key"
	ReplayedHeader    = "Idempotency-Replayed"
)

// idempotencyPoll is how often a retry checks whether the first request
// with its key finished.
const idempotencyPoll = 25 * time.Millisecond

// requestHash is the digest a reused key is compared by.
func requestHash(method, pathQuery string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method + "\n" + pathQuery + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// idempotent runs h once per Idempotency-Key (scoped by the caller): the
// first request runs and its response is kept for Config.IdempotencyTTL;
// a retry gets that response verbatim with "Idempotency-Replayed: true";
// a retry while the first still runs waits for it until the request
// timeout, then gets 409; the key with another request is 422. Responses
// with a 5xx status, 408 or 429 are not kept (the retry runs again).
func (s *Server) idempotent(c *call, key string, h func(*call)) {
	if len(key) > 255 || strings.IndexFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		c.fail(core.Errorf(core.CodeBadRequest, "Idempotency-Key must be 1-255 visible ASCII characters"))
		return
	}
	ctx := c.r.Context()
	scoped := c.p.id + ":" + key
	hash := requestHash(c.r.Method, c.r.URL.RequestURI(), c.body)
	deadline := c.start.Add(s.cfg.RequestTimeout)
	for {
		rec := core.IdempotencyRecord{Key: scoped, Owner: s.deps.NodeID, Hash: hash, Expires: s.now().Add(s.cfg.IdempotencyTTL)}
		got, reserved, err := s.idem.ReserveIdempotency(ctx, rec, s.cfg.IdempotencyTTL)
		if err != nil {
			c.fail(err)
			return
		}
		if reserved {
			s.runRecorded(c, rec, h)
			return
		}
		if !s.await(c, scoped, hash, got, deadline) {
			return
		}
	}
}

// await answers a request whose Idempotency-Key has a record: with the
// first response once it is done (polling the local replica), 422 for
// another request, 409 once the deadline passes. It returns true when the
// request should try to reserve the key again: its record went (the first
// request failed and was forgotten) or was abandoned.
func (s *Server) await(c *call, key, hash string, got core.IdempotencyRecord, deadline time.Time) bool {
	ctx := c.r.Context()
	for {
		switch {
		case got.Hash != hash:
			writeErrorStatus(c.w, http.StatusUnprocessableEntity, ErrIdempotencyMismatch)
			return false
		case got.Done:
			replay(c, got)
			return false
		case s.abandoned(got):
			// Its node stopped before finishing it: run the request again
			// rather than answer 409 until the record expires.
			s.log.Warn("an Idempotency-Key's first request never finished; running its retry", "key", key, "node", got.Owner)
			if err := s.idem.ForgetIdempotency(ctx, key); err != nil {
				c.fail(err)
				return false
			}
			return true
		case !s.now().Before(deadline):
			c.fail(ErrIdempotencyBusy)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(idempotencyPoll):
		}
		var ok bool
		if got, ok = s.idem.Idempotency(key); !ok {
			return true
		}
	}
}

// abandonGrace is how long past the request timeout a first request may
// still finish (it completes its record after its last action).
const abandonGrace = 30 * time.Second

// abandoned reports whether rec belongs to a request that cannot still be
// running: it began (Expires - IdempotencyTTL) longer ago than a request
// may last. Its node crashed or was cut off before completing it.
func (s *Server) abandoned(rec core.IdempotencyRecord) bool {
	began := rec.Expires.Add(-s.cfg.IdempotencyTTL)
	return !rec.Done && s.now().Sub(began) > s.cfg.RequestTimeout+abandonGrace
}

// runRecorded runs h, streaming its response while keeping a copy, and
// completes (or forgets) the reserved record.
func (s *Server) runRecorded(c *call, rec core.IdempotencyRecord, h func(*call)) {
	rw := &recorder{ResponseWriter: c.w, max: s.cfg.MaxRecordBytes}
	c.w = rw
	h(c)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), 10*time.Second)
	defer cancel()
	st := rw.code()
	if rw.over || st >= 500 || st == http.StatusRequestTimeout || st == http.StatusTooManyRequests {
		if err := s.idem.ForgetIdempotency(ctx, rec.Key); err != nil {
			s.log.Warn("forget an idempotency record", "err", err)
		}
		return
	}
	rec.Done, rec.Status, rec.Result = true, st, rw.buf.Bytes()
	if err := s.idem.CompleteIdempotency(ctx, rec); err != nil {
		s.log.Warn("keep a response for Idempotency-Key replay", "err", err)
	}
}

// replay answers with a kept response.
func replay(c *call, rec core.IdempotencyRecord) {
	ctype := "application/json"
	if c.r.URL.Path == "/v1/actions" && rec.Status == http.StatusOK {
		ctype = "application/x-ndjson"
	}
	c.w.Header().Set("Content-Type", ctype)
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.Header().Set(ReplayedHeader, "true")
	c.w.WriteHeader(rec.Status)
	_, _ = c.w.Write(rec.Result)
}

// recorder passes a response through and keeps a copy of up to max bytes.
type recorder struct {
	http.ResponseWriter
	max    int
	status int
	buf    bytes.Buffer
	over   bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.buf.Len()+len(b) > r.max {
		r.over = true
	} else if !r.over {
		r.buf.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// MemoryIdempotency keeps idempotency records in memory: the store of a
// single node (a cluster keeps them in its replicated state, so that a
// retry on another node replays). At most max records are kept; when all
// are live, the oldest finished one goes first, and when all still run, a
// new key is refused (rate_limited). Safe for concurrent use.
type MemoryIdempotency struct {
	max int
	now func() time.Time
	mu  sync.Mutex
	m   map[string]core.IdempotencyRecord
}

// NewMemoryIdempotency returns an empty store of at most max records; now
// is its clock (nil: time.Now).
func NewMemoryIdempotency(max int, now func() time.Time) *MemoryIdempotency {
	if now == nil {
		now = time.Now
	}
	return &MemoryIdempotency{max: max, now: now, m: make(map[string]core.IdempotencyRecord)}
}

// ReserveIdempotency implements Idempotency.
func (m *MemoryIdempotency) ReserveIdempotency(_ context.Context, rec core.IdempotencyRecord, ttl time.Duration) (core.IdempotencyRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if got, ok := m.m[rec.Key]; ok && now.Before(got.Expires) {
		return got, false, nil
	}
	if len(m.m) >= m.max && !m.makeRoom(now) {
		return core.IdempotencyRecord{}, false, core.Errorf(core.CodeRateLimited, "too many requests with an Idempotency-Key in flight")
	}
	rec.Done, rec.Expires = false, now.Add(ttl)
	m.m[rec.Key] = rec
	return rec, true, nil
}

// makeRoom drops expired records, else the finished one expiring first.
func (m *MemoryIdempotency) makeRoom(now time.Time) bool {
	var oldest string
	for k, r := range m.m {
		if !now.Before(r.Expires) {
			delete(m.m, k)
		} else if r.Done && (oldest == "" || r.Expires.Before(m.m[oldest].Expires)) {
			oldest = k
		}
	}
	if len(m.m) < m.max {
		return true
	}
	if oldest == "" {
		return false
	}
	delete(m.m, oldest)
	return true
}

// CompleteIdempotency implements Idempotency.
func (m *MemoryIdempotency) CompleteIdempotency(_ context.Context, rec core.IdempotencyRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if got, ok := m.m[rec.Key]; ok {
		rec.Expires = got.Expires
	}
	rec.Done = true
	m.m[rec.Key] = rec
	return nil
}

// ForgetIdempotency implements Idempotency.
func (m *MemoryIdempotency) ForgetIdempotency(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

// Idempotency implements Idempotency.
func (m *MemoryIdempotency) Idempotency(key string) (core.IdempotencyRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[key]
	if !ok || !m.now().Before(r.Expires) {
		return core.IdempotencyRecord{}, false
	}
	return r, true
}
