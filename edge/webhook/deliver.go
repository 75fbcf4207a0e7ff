package webhook

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/core/whsig"
)

// deliverer POSTs the outbox's webhooks: one at a time per room in Seq
// order (webhooks without a room independently), at most Config.PerHost
// at once per receiver and Config.Global overall, retrying with
// exponential backoff and full jitter, and commits outcomes in batches.
type deliverer struct {
	cfg   Config
	store Outbox
	log   *slog.Logger
	m     *metrics
	wake  nudge

	mu     sync.Mutex
	client *http.Client
}

func newDeliverer(cfg Config, store Outbox, log *slog.Logger, m *metrics) *deliverer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.PerHost
	d := &deliverer{cfg: cfg, store: store, log: log, m: m, wake: newNudge()}
	d.setClient(&http.Client{Transport: tr})
	return d
}

func (d *deliverer) setClient(c *http.Client) {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	d.mu.Lock()
	d.client = &cc
	d.mu.Unlock()
}

// Notify nudges the deliverer to read the outbox now; it never blocks.
func (d *deliverer) Notify() { d.wake.notify() }

// entry is one webhook the delivery loop tracks.
type entry struct {
	w        core.Webhook
	first    time.Time // Enqueued, or when first seen if the store left it zero
	attempts int
	next     time.Time // no attempt before
	lastErr  string
	inFlight bool
	done     bool // acked or dead; waiting for the settle to commit
}

// queue is one room's webhooks in Seq order; a webhook without a room
// has a queue of its own.
type queue struct{ items []*entry }

// outcome is what one POST came to.
type outcome struct {
	id         string
	canceled   bool // the Run ended during the attempt: no outcome
	status     int
	err        error
	retryAfter time.Duration
}

// delivery is the state of one Run; only the Run goroutine touches it.
type delivery struct {
	*deliverer
	client   *http.Client
	entries  map[string]*entry
	queues   []*queue // per room, in the order of their first webhook's Seq
	hostBusy map[string]int
	inFlight int
	results  chan outcome
	keys     []ed25519.PrivateKey

	acked     []string
	dead      []core.Webhook
	firstDone time.Time // when the oldest unsettled outcome was decided
	lastLoad  time.Time
	reload    bool
	failing   bool // the last settle failed (logged once per streak)
}

// Run delivers until ctx ends, then waits for the POSTs under way, makes a
// last attempt to commit their outcomes, and returns.
func (d *deliverer) Run(ctx context.Context) {
	d.mu.Lock()
	client := d.client
	d.mu.Unlock()
	r := &delivery{deliverer: d, client: client, entries: map[string]*entry{}, hostBusy: map[string]int{},
		results: make(chan outcome, d.cfg.Global), reload: true}
	defer d.m.inFlight.Store(0)
	defer client.CloseIdleConnections()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		now := time.Now()
		r.flush(ctx, now, false)
		if r.reload || now.Sub(r.lastLoad) >= r.loadEvery() {
			r.load(now)
		}
		wakeAt := r.schedule(ctx, now)
		t.Reset(max(time.Until(wakeAt), time.Millisecond))
		select {
		case <-ctx.Done():
			r.stop()
			return
		case o := <-r.results:
			r.handle(o, time.Now())
			r.drain()
		case <-d.wake:
			r.reload = true
		case <-t.C:
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
	}
}

// drain handles the outcomes already waiting, so that one scheduling
// pass follows many of them.
func (r *delivery) drain() {
	for {
		select {
		case o := <-r.results:
			r.handle(o, time.Now())
		default:
			return
		}
	}
}

// stop waits for the POSTs under way and commits what can be committed.
func (r *delivery) stop() {
	for r.inFlight > 0 {
		r.handle(<-r.results, time.Now())
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.AttemptTimeout)
	defer cancel()
	r.flush(ctx, time.Now(), true)
}

// loadEvery is how often the outbox is read without a nudge: every
// PollInterval, less often when it is large (a long outage), up to 5 s.
func (r *delivery) loadEvery() time.Duration {
	every := r.cfg.PollInterval
	if n := len(r.entries); n > 1000 {
		every = min(every*time.Duration(n/1000), max(5*time.Second, r.cfg.PollInterval))
	}
	return every
}

// load reads the outbox and reconciles it with what this loop tracks.
func (r *delivery) load(now time.Time) {
	r.reload, r.lastLoad = false, now
	pending := r.store.PendingWebhooks()
	seen := make(map[string]*entry, len(pending))
	rooms := map[string]*queue{}
	r.queues = r.queues[:0]
	var oldest time.Time
	for _, w := range pending {
		e := r.entries[w.ID]
		if e == nil {
			e = &entry{w: w, first: w.Enqueued}
			if e.first.IsZero() {
				e.first = now
			}
		}
		seen[w.ID] = e
		q := rooms[w.Room]
		if q == nil || w.Room == "" {
			q = &queue{}
			r.queues = append(r.queues, q)
			if w.Room != "" {
				rooms[w.Room] = q
			}
		}
		q.items = append(q.items, e)
		if oldest.IsZero() || e.first.Before(oldest) {
			oldest = e.first
		}
	}
	for id, e := range r.entries {
		if seen[id] != nil {
			continue
		}
		if e.inFlight || e.done {
			seen[id] = e // its outcome still has to be settled
			continue
		}
		r.m.gone.Add(1)
		r.m.since(id, time.Time{})
	}
	r.entries = seen
	r.m.pending.Store(int64(len(pending)))
	if oldest.IsZero() {
		r.m.oldest.Store(0)
	} else {
		r.m.oldest.Store(oldest.UnixNano())
	}
	keys := r.store.SigningKeys()
	r.keys = r.keys[:0]
	for _, k := range keys {
		r.keys = append(r.keys, k.Private)
	}
}

// schedule starts the POSTs that may go now and returns when to look again.
func (r *delivery) schedule(ctx context.Context, now time.Time) time.Time {
	wakeAt := r.lastLoad.Add(r.loadEvery())
	if len(r.acked)+len(r.dead) > 0 {
		wakeAt = earliest(wakeAt, r.firstDone.Add(r.cfg.SettleInterval))
	}
	for _, q := range r.queues {
		for len(q.items) > 0 && q.items[0].done {
			q.items = q.items[1:]
		}
		if len(q.items) == 0 {
			continue
		}
		e := q.items[0]
		if e.inFlight {
			continue
		}
		if now.Before(e.next) {
			wakeAt = earliest(wakeAt, e.next)
			continue
		}
		if r.inFlight >= r.cfg.Global {
			break
		}
		host := hostKey(e.w)
		if r.hostBusy[host] >= r.cfg.PerHost {
			continue
		}
		r.launch(ctx, e, host)
	}
	return wakeAt
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// hostKey is what the per-host limit counts by: the URL's host and port.
func hostKey(w core.Webhook) string {
	if u, err := url.Parse(w.URL); err == nil && u.Host != "" {
		return u.Host
	}
	return w.Host
}

func (r *delivery) launch(ctx context.Context, e *entry, host string) {
	e.inFlight = true
	r.inFlight++
	r.hostBusy[host]++
	r.m.inFlight.Store(int64(r.inFlight))
	w, keys, client := e.w, append([]ed25519.PrivateKey(nil), r.keys...), r.client
	go func() {
		r.results <- r.post(ctx, client, w, keys)
	}()
}

// handle applies the outcome of one POST.
func (r *delivery) handle(o outcome, now time.Time) {
	e := r.entries[o.id]
	if e == nil || !e.inFlight {
		return
	}
	e.inFlight = false
	r.inFlight--
	r.m.inFlight.Store(int64(r.inFlight))
	host := hostKey(e.w)
	if r.hostBusy[host]--; r.hostBusy[host] <= 0 {
		delete(r.hostBusy, host)
	}
	if o.canceled {
		return // stopping: the next leader (or run) tries again
	}
	e.attempts++
	switch {
	case o.err == nil && o.status >= 200 && o.status < 300:
		r.markDone(e, now)
		r.acked = append(r.acked, e.w.ID)
		r.m.delivered.Add(1)
		r.m.observe(now.Sub(r.m.since(e.w.ID, e.first)))
		return
	case o.err != nil:
		e.lastErr = o.err.Error()
	default:
		e.lastErr = fmt.Sprintf("HTTP %d", o.status)
	}
	if permanent(o) {
		r.die(e, now, e.lastErr)
		return
	}
	delay := r.backoff(e.attempts)
	if o.retryAfter > 0 {
		delay = min(o.retryAfter, r.cfg.BackoffMax)
	}
	if now.Add(delay).Sub(e.first) >= r.cfg.MaxAge {
		r.die(e, now, "max age "+r.cfg.MaxAge.String()+" exceeded; last error: "+e.lastErr)
		return
	}
	e.next = now.Add(delay)
	r.m.retried.Add(1)
	r.log.Debug("webhook attempt failed; will retry", "id", e.w.ID, "url", e.w.URL, "attempt", e.attempts, "err", e.lastErr, "in", delay)
}

// permanent reports outcomes not worth retrying: a 4xx other than 408 and
// 429, or a request that cannot be made at all.
func permanent(o outcome) bool {
	var bad *badRequestError
	if errors.As(o.err, &bad) {
		return true
	}
	return o.err == nil && o.status >= 400 && o.status < 500 && o.status != http.StatusRequestTimeout && o.status != http.StatusTooManyRequests
}

// backoff returns the full-jitter delay after the given number of attempts.
func (r *delivery) backoff(attempts int) time.Duration {
	ceil := r.cfg.BackoffMax
	if attempts < 40 {
		ceil = min(ceil, r.cfg.BackoffBase<<(attempts-1))
	}
	return rand.N(ceil + 1)
}

// maxLastError bounds the error kept with a dead webhook (the cluster's
// store refuses longer ones).
const maxLastError = 1024

func (r *delivery) die(e *entry, now time.Time, reason string) {
	if len(reason) > maxLastError {
		reason = strings.ToValidUTF8(reason[:maxLastError], "")
	}
	w := e.w
	w.Attempts += e.attempts
	w.LastError = reason
	w.Died = now
	r.markDone(e, now)
	r.dead = append(r.dead, w)
	r.m.dead.Add(1)
	r.m.since(w.ID, time.Time{})
	r.log.Warn("webhook dead-lettered", "id", w.ID, "url", w.URL, "room", w.Room, "attempts", w.Attempts, "err", reason)
}

// markDone marks e decided; the caller queues its outcome for the settle.
func (r *delivery) markDone(e *entry, now time.Time) {
	e.done = true
	if len(r.acked)+len(r.dead) == 0 {
		r.firstDone = now
	}
}

// flush commits the decided outcomes when enough of them wait, or the
// oldest waited SettleInterval (or always, with force). A failed commit
// is retried after SettleInterval.
func (r *delivery) flush(ctx context.Context, now time.Time, force bool) {
	n := len(r.acked) + len(r.dead)
	if n == 0 || (!force && n < r.cfg.SettleBatch && now.Sub(r.firstDone) < r.cfg.SettleInterval) {
		return
	}
	if err := r.store.SettleWebhooks(ctx, r.acked, r.dead); err != nil {
		r.m.settleErrors.Add(1)
		r.firstDone = now
		if !r.failing && ctx.Err() == nil {
			r.log.Warn("committing webhook outcomes failed; will retry", "acked", len(r.acked), "dead", len(r.dead), "err", err)
		}
		r.failing = true
		return
	}
	if r.failing {
		r.log.Info("committing webhook outcomes works again", "acked", len(r.acked), "dead", len(r.dead))
		r.failing = false
	}
	r.m.pending.Add(-int64(n))
	for _, id := range r.acked {
		delete(r.entries, id)
	}
	for _, w := range r.dead {
		delete(r.entries, w.ID)
	}
	r.acked, r.dead = r.acked[:0], r.dead[:0]
}

// badRequestError marks a webhook that cannot be sent as it is.
type badRequestError struct{ err error }

func (e *badRequestError) Error() string { return e.err.Error() }
func (e *badRequestError) Unwrap() error { return e.err }

// post makes one attempt.
func (d *deliverer) post(ctx context.Context, client *http.Client, w core.Webhook, keys []ed25519.PrivateKey) outcome {
	o := outcome{id: w.ID}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		o.err = &badRequestError{fmt.Errorf("bad webhook url %q: want http(s)://host/...", w.URL)}
		return o
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.URL, bytes.NewReader(w.Body))
	if err != nil {
		o.err = &badRequestError{err}
		return o
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", d.cfg.UserAgent)
	for k, v := range w.Headers {
		switch lk := strings.ToLower(k); {
		case strings.HasPrefix(lk, "webhook-"), lk == "content-type", lk == "content-length", lk == "host":
			continue
		}
		h.Set(k, v)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h.Set("webhook-id", w.ID)
	h.Set("webhook-timestamp", ts)
	if sig := whsig.Sign(w.ID, ts, w.Body, w.Secret, keys...); sig != "" {
		h.Set("webhook-signature", sig)
	}
	rsp, err := client.Do(req)
	if err != nil {
		o.err, o.canceled = err, ctx.Err() != nil
		return o
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(rsp.Body, d.cfg.MaxResponse))
	_ = rsp.Body.Close()
	o.status = rsp.StatusCode
	if o.status == http.StatusTooManyRequests || o.status == http.StatusServiceUnavailable {
		if s, err := strconv.Atoi(strings.TrimSpace(rsp.Header.Get("Retry-After"))); err == nil && s > 0 {
			o.retryAfter = time.Duration(s) * time.Second
		}
	}
	return o
}
