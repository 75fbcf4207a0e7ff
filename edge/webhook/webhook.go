// Package webhook runs Parley's durable presence webhooks: a processor
// turns committed presence events into queued webhooks (through the
// presence plugins, behind Hook), and a deliverer POSTs the queued
// webhooks, signed in the Standard Webhooks convention, until receivers
// acknowledge them or they dead-letter. Both run on the node that leads
// the cluster (or on the single node) over a Store: the cluster's Raft
// state (raftstore.Store) or, on one node, a FileStore in the data
// directory.
//
// A Pipeline (New, then Run while leading) holds both. Delivery rules:
// webhooks of one room go out one at a time in Seq order (those without a
// room independently), at most Config.PerHost at once per receiver and
// Config.Global overall; a 2xx acknowledges; a 4xx other than 408 and 429
// dead-letters at once; anything else (5xx, 408, 429, timeouts, connection
// errors, redirects, which are never followed) is retried with
// exponential backoff and full jitter (a Retry-After on 429/503 is
// honoured up to Config.BackoffMax) until Config.MaxAge after enqueue,
// then dead-letters. Outcomes are committed in batches.
//
// Each POST carries Content-Type: application/json, the plugin's extra
// headers (never webhook-*), webhook-id (Webhook.ID), webhook-timestamp
// (unix seconds of the attempt) and webhook-signature: "v1,<HMAC>" when
// the webhook has a secret, then one "v1a,<Ed25519>" per signing key.
//
// Delivery is at-least-once: a webhook may be POSTed again after a leader
// change or a crash, always with the same webhook-id, so receivers
// de-duplicate by it.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/core"
)

// Journal is the presence side of the Store: the journal of committed
// presence events and the cursor of the last one processed.
// Implementations are safe for concurrent use.
type Journal interface {
	// PresenceJournal returns up to limit entries with Seq > after, in Seq
	// order, and how many entries after `after` are no longer in the
	// journal (trimmed before they were processed).
	PresenceJournal(after uint64, limit int) (entries []core.JournalEntry, dropped uint64)
	// WebhookCursor returns the Seq of the last journal entry processed.
	WebhookCursor() uint64
	// EnqueueWebhooks commits in one write: the cursor moves from `from`
	// to `to` (compare-and-set: an error matching core.ErrConflict when
	// the cursor is not `from`) and items join the outbox (ids already
	// queued are ignored). The store assigns Seq and Enqueued.
	EnqueueWebhooks(ctx context.Context, from, to uint64, items []core.Webhook) error
}

// Outbox is the delivery side of the Store. Implementations are safe for
// concurrent use.
type Outbox interface {
	// PendingWebhooks returns the queued webhooks in Seq order.
	PendingWebhooks() []core.Webhook
	// SettleWebhooks removes the acknowledged ids from the outbox and moves
	// dead (with Attempts and LastError set) to the dead-letter list.
	SettleWebhooks(ctx context.Context, acked []string, dead []core.Webhook) error
	// SigningKeys returns the cluster's signing keys, the active one first.
	SigningKeys() []core.SigningKey
}

// Store is the durable state the pipeline runs on. raftstore.Store
// implements it in a cluster; FileStore on a single node.
type Store interface {
	Journal
	Outbox
}

// Hook runs the presence plugins over one committed event and returns the
// webhooks they ask for (Room, Host, URL, Body... filled in; ID may be left
// empty, the processor then derives a stable one). Errors that are worth
// retrying the event for implement interface{ Transient() bool } (found
// with errors.As). Webhooks is called from one goroutine at a time.
type Hook interface {
	Webhooks(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error)
}

// HookFunc adapts a function to Hook.
type HookFunc func(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error)

// Webhooks calls f.
func (f HookFunc) Webhooks(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
	return f(ctx, ev)
}

// Errors.
var (
	// ErrOutboxFull is the LastError of webhooks dead-lettered at enqueue
	// because the outbox holds too many pending webhooks.
	ErrOutboxFull = errors.New("outbox full")
	// ErrClosed is returned by a FileStore after Close.
	ErrClosed = errors.New("webhook store closed")
)

// Config tunes the pipeline. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// AttemptTimeout bounds one POST, response included.
	AttemptTimeout time.Duration
	// BackoffBase and BackoffMax shape the retry delay: a uniformly random
	// delay in [0, min(BackoffMax, BackoffBase*2^attempt)] ("full jitter").
	// A Retry-After on 429/503 is honoured up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// MaxAge is how long after enqueue a failing webhook keeps being
	// retried before it dead-letters.
	MaxAge time.Duration
	// PerHost limits concurrent POSTs to one receiver host; Global limits
	// them overall.
	PerHost, Global int
	// JournalBatch is how many journal entries the processor reads and
	// enqueues per write.
	JournalBatch int
	// SettleBatch is how many outcomes make the deliverer commit at once;
	// it commits at least every SettleInterval otherwise.
	SettleBatch    int
	SettleInterval time.Duration
	// PollInterval is how often the store is polled for new journal
	// entries and pending webhooks when nothing nudged (Notify).
	PollInterval time.Duration
	// HookTries bounds the tries of one event whose hook fails
	// transiently; HookBackoff is the delay before the second try (doubled
	// for each further one). After the last try the event fails open.
	HookTries   int
	HookBackoff time.Duration
	// MaxResponse caps the bytes of a response body read (and discarded).
	MaxResponse int64
	// UserAgent is sent with every POST.
	UserAgent string
}

// DefaultConfig returns the defaults: 10 s attempts, backoff 500 ms to
// 5 min, 24 h max age, 4 per host and 64 overall, batches of 256, settle
// every 50 ms, poll every 100 ms, 5 hook tries from 100 ms.
func DefaultConfig() Config {
	return Config{
		AttemptTimeout: 10 * time.Second,
		BackoffBase:    500 * time.Millisecond,
		BackoffMax:     5 * time.Minute,
		MaxAge:         24 * time.Hour,
		PerHost:        4,
		Global:         64,
		JournalBatch:   256,
		SettleBatch:    256,
		SettleInterval: 50 * time.Millisecond,
		PollInterval:   100 * time.Millisecond,
		HookTries:      5,
		HookBackoff:    100 * time.Millisecond,
		MaxResponse:    64 << 10,
		UserAgent:      "Parley-Webhooks/1",
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.AttemptTimeout <= 0:
		return fmt.Errorf("webhook: attempt timeout must be positive, got %s", c.AttemptTimeout)
	case c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase:
		return fmt.Errorf("webhook: want 0 < backoff base (%s) <= backoff max (%s)", c.BackoffBase, c.BackoffMax)
	case c.MaxAge <= 0:
		return fmt.Errorf("webhook: max age must be positive, got %s", c.MaxAge)
	case c.PerHost < 1 || c.Global < 1:
		return fmt.Errorf("webhook: per-host (%d) and global (%d) concurrency must be at least 1", c.PerHost, c.Global)
	case c.JournalBatch < 1 || c.SettleBatch < 1:
		return fmt.Errorf("webhook: journal batch (%d) and settle batch (%d) must be at least 1", c.JournalBatch, c.SettleBatch)
	case c.SettleInterval <= 0 || c.PollInterval <= 0:
		return fmt.Errorf("webhook: settle interval (%s) and poll interval (%s) must be positive", c.SettleInterval, c.PollInterval)
	case c.HookTries < 1 || c.HookBackoff < 0:
		return fmt.Errorf("webhook: hook tries (%d) must be at least 1 and hook backoff (%s) not negative", c.HookTries, c.HookBackoff)
	case c.MaxResponse < 0:
		return fmt.Errorf("webhook: max response must not be negative, got %d", c.MaxResponse)
	}
	return nil
}
