package plugins

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/abi"
	"github.com/parleyhq/parley/core/whsig"
)

// Webhook is one request a plugin asked the host to send.
type Webhook struct {
	Plugin        string
	PluginVersion string
	Request       abi.WebhookRequest
	Created       time.Time
}

// WebhookSink receives the webhooks plugins send. Enqueue must not block
// for long: it runs at the end of a hook call. The default DirectSink
// POSTs in the background; a durable outbox can take its place unchanged.
type WebhookSink interface {
	Enqueue(ctx context.Context, w Webhook) error
}

// DirectSinkConfig configures a DirectSink.
type DirectSinkConfig struct {
	Timeout    time.Duration // per attempt; default 10s
	Attempts   int           // per webhook; default 3
	RetryDelay time.Duration // before the 2nd attempt, doubling; default 1s
	Queue      int           // webhooks waiting; default 1024
	Workers    int           // concurrent deliveries; default 2
	// SigningKeys each add a "v1a," Standard Webhooks (Ed25519) signature;
	// during a key rotation, sign with the new and the old key so
	// receivers that know either accept the webhook. SetSigningKeys
	// changes them later.
	SigningKeys []ed25519.PrivateKey
	// SigningKey is one more signing key, signed with after SigningKeys
	// (kept for configurations that name a single key).
	SigningKey ed25519.PrivateKey
	Client     *http.Client // default: a client that follows no redirects
}

// DirectSink delivers webhooks by HTTP POST from a few worker goroutines,
// with retries, following the Standard Webhooks headers (webhook-id,
// webhook-timestamp, webhook-signature). It keeps nothing on disk: what is
// queued at shutdown past Close's deadline is lost.
type DirectSink struct {
	cfg   DirectSinkConfig
	log   *slog.Logger
	queue chan Webhook
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.RWMutex
	done  bool
	keys  atomic.Pointer[[]ed25519.PrivateKey]

	delivered, failed atomic.Uint64
}

// NewDirectSink starts a DirectSink's workers; Close stops them.
func NewDirectSink(cfg DirectSinkConfig, log *slog.Logger) *DirectSink {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s := &DirectSink{cfg: cfg, log: log, queue: make(chan Webhook, cfg.Queue), stop: make(chan struct{})}
	keys := slices.Clone(cfg.SigningKeys)
	if cfg.SigningKey != nil {
		keys = append(keys, cfg.SigningKey)
	}
	s.SetSigningKeys(keys...)
	for range cfg.Workers {
		s.wg.Add(1)
		go s.work()
	}
	return s
}

// SetSigningKeys replaces the keys webhooks are signed with (a "v1a"
// signature each); deliveries from then on use them. Safe for concurrent
// use with deliveries.
func (s *DirectSink) SetSigningKeys(keys ...ed25519.PrivateKey) {
	ks := slices.Clone(keys)
	s.keys.Store(&ks)
}

// Enqueue implements WebhookSink.
func (s *DirectSink) Enqueue(_ context.Context, w Webhook) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.done {
		return ErrSinkClosed
	}
	select {
	case s.queue <- w:
		return nil
	default:
		return ErrSinkFull
	}
}

// Delivered and Failed count webhooks sent successfully and given up on.
func (s *DirectSink) Delivered() uint64 { return s.delivered.Load() }

// Failed counts webhooks given up on after every attempt.
func (s *DirectSink) Failed() uint64 { return s.failed.Load() }

// Close stops accepting webhooks and waits until the queue is delivered or
// ctx ends, when deliveries in progress are abandoned.
func (s *DirectSink) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.done {
		s.done = true
		close(s.queue)
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		close(s.stop)
		<-finished
		return fmt.Errorf("plugins: webhook sink closed with deliveries pending: %w", ctx.Err())
	}
}

func (s *DirectSink) work() {
	defer s.wg.Done()
	for w := range s.queue {
		s.deliver(w)
	}
}

// deliver tries a webhook up to Attempts times.
func (s *DirectSink) deliver(w Webhook) {
	delay := s.cfg.RetryDelay
	var err error
	for attempt := 1; attempt <= s.cfg.Attempts; attempt++ {
		var retry bool
		if retry, err = s.post(w); err == nil {
			s.delivered.Add(1)
			return
		}
		if !retry || attempt == s.cfg.Attempts {
			break
		}
		select {
		case <-time.After(delay):
			delay *= 2
		case <-s.stop:
			attempt = s.cfg.Attempts
		}
	}
	s.failed.Add(1)
	s.log.Warn("webhook delivery failed", "plugin", w.Plugin, "id", w.Request.ID,
		"target", w.Request.Target, "url", w.Request.URL, "err", err)
}

// post makes one attempt and reports whether a failure is worth retrying.
func (s *DirectSink) post(w Webhook) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	r := w.Request
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return false, fmt.Errorf("plugins: webhook request: %w", err)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "parley-webhook/1")
	req.Header.Set("webhook-id", r.ID)
	req.Header.Set("webhook-timestamp", ts)
	if sig := Sign(r.ID, ts, r.Body, r.Secret, *s.keys.Load()...); sig != "" {
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("plugins: webhook post: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
	return retry, fmt.Errorf("plugins: webhook post: status %s", resp.Status)
}

// Sign computes a Standard Webhooks signature header value over
// "id.timestamp.body" with whsig.Sign: "v1,<base64 HMAC-SHA256>" when
// secret is set (a "whsec_" prefix means the rest is base64), then one
// "v1a,<base64 Ed25519>" per key (several during a key rotation),
// separated by spaces, or "" when there is neither. Keys of the wrong size
// are skipped.
func Sign(id, timestamp string, body []byte, secret string, keys ...ed25519.PrivateKey) string {
	return whsig.Sign(id, timestamp, body, secret, keys...)
}
