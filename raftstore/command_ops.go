package raftstore

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/parleyhq/parley/core"
)

// The commands of the webhook pipeline (issue 5) and of the server API
// (issue 7): the outbox, the cluster's signing keys, API keys and
// idempotency records.

// Limits on the fields of these commands.
const (
	maxIdempotencyKey    = 512
	maxIdempotencyResult = 1 << 20
	maxLastError         = 4096
	maxURL               = 2048
)

// EnqueueWebhooks is the pipeline's step over the presence journal: if
// the cursor is From (compare-and-set), it moves it to To and appends
// Items to the outbox. An item whose ID is pending or dead already is
// ignored, so a step repeated by a new leader enqueues nothing twice.
type EnqueueWebhooks struct {
	Header
	From  uint64         `json:"from"`
	To    uint64         `json:"to"`
	Items []core.Webhook `json:"items,omitempty"`
}

// SettleWebhooks records delivery outcomes: Acked webhooks leave the
// outbox; Dead ones (matched by ID, with their Attempts and LastError)
// move from the pending list to the dead-letter list.
type SettleWebhooks struct {
	Header
	Acked []string       `json:"acked,omitempty"`
	Dead  []core.Webhook `json:"dead,omitempty"`
}

// ClearWebhooks removes the pending (Dead false) or dead webhooks of Host,
// or all of them when Host is empty.
type ClearWebhooks struct {
	Header
	Host string `json:"host,omitempty"`
	Dead bool   `json:"dead,omitempty"`
}

// RetryWebhooks moves the dead webhooks of Host (all when empty) back to
// the end of the pending list.
type RetryWebhooks struct {
	Header
	Host string `json:"host,omitempty"`
}

// RotateSigningKey makes Key the cluster's active signing key; the
// previous active key stays, inactive, and any older one is dropped. The
// proposer generates the key (Apply draws no randomness). With IfNone the
// command does nothing when the cluster has a key already.
type RotateSigningKey struct {
	Header
	Key    core.SigningKey `json:"key"`
	IfNone bool            `json:"if_none,omitempty"`
}

// RetireSigningKeys drops the inactive signing keys.
type RetireSigningKeys struct {
	Header
}

// PutAPIKey adds a server API key; an existing ID is a conflict.
type PutAPIKey struct {
	Header
	Key core.APIKey `json:"key"`
}

// DeleteAPIKey removes a server API key.
type DeleteAPIKey struct {
	Header
	ID string `json:"id"`
}

// ReserveIdempotency stores Record (not done, expiring TTL after the
// header time) unless a live record with its key exists.
type ReserveIdempotency struct {
	Header
	Record core.IdempotencyRecord `json:"record"`
	TTL    time.Duration          `json:"ttl"`
}

// CompleteIdempotency stores the outcome of a reserved request.
type CompleteIdempotency struct {
	Header
	Record core.IdempotencyRecord `json:"record"`
}

// ForgetIdempotency drops an idempotency record.
type ForgetIdempotency struct {
	Header
	Key string `json:"key"`
}

// Kind implements Command.
func (*EnqueueWebhooks) Kind() CommandKind { return KindEnqueueWebhooks }

// Kind implements Command.
func (*SettleWebhooks) Kind() CommandKind { return KindSettleWebhooks }

// Kind implements Command.
func (*ClearWebhooks) Kind() CommandKind { return KindClearWebhooks }

// Kind implements Command.
func (*RetryWebhooks) Kind() CommandKind { return KindRetryWebhooks }

// Kind implements Command.
func (*RotateSigningKey) Kind() CommandKind { return KindRotateSigningKey }

// Kind implements Command.
func (*RetireSigningKeys) Kind() CommandKind { return KindRetireSigningKeys }

// Kind implements Command.
func (*PutAPIKey) Kind() CommandKind { return KindPutAPIKey }

// Kind implements Command.
func (*DeleteAPIKey) Kind() CommandKind { return KindDeleteAPIKey }

// Kind implements Command.
func (*ReserveIdempotency) Kind() CommandKind { return KindReserveIdempotency }

// Kind implements Command.
func (*CompleteIdempotency) Kind() CommandKind { return KindCompleteIdempotency }

// Kind implements Command.
func (*ForgetIdempotency) Kind() CommandKind { return KindForgetIdempotency }

// newOpCommand returns an empty command of kind k among those above, or nil.
func newOpCommand(k CommandKind) Command {
	switch k {
	case KindEnqueueWebhooks:
		return &EnqueueWebhooks{}
	case KindSettleWebhooks:
		return &SettleWebhooks{}
	case KindClearWebhooks:
		return &ClearWebhooks{}
	case KindRetryWebhooks:
		return &RetryWebhooks{}
	case KindRotateSigningKey:
		return &RotateSigningKey{}
	case KindRetireSigningKeys:
		return &RetireSigningKeys{}
	case KindPutAPIKey:
		return &PutAPIKey{}
	case KindDeleteAPIKey:
		return &DeleteAPIKey{}
	case KindReserveIdempotency:
		return &ReserveIdempotency{}
	case KindCompleteIdempotency:
		return &CompleteIdempotency{}
	case KindForgetIdempotency:
		return &ForgetIdempotency{}
	}
	return nil
}

// signingKeyID is the key id of a public key: the first 16 hex digits of
// its SHA-256.
func signingKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

func validHost(h string) bool { return len(h) <= maxName }

func validWebhook(w *core.Webhook) error {
	switch {
	case !validName(w.ID):
		return errField("webhook ids")
	case w.URL == "" || len(w.URL) > maxURL || !validHost(w.Host):
		return fmt.Errorf("webhook %s needs a URL and a host", w.ID)
	case len(w.Room) > maxName || len(w.LastError) > maxLastError:
		return fmt.Errorf("webhook %s has an oversized field", w.ID)
	}
	return nil
}

func (c *EnqueueWebhooks) validate() error {
	if c.To < c.From {
		return fmt.Errorf("cursor step from %d back to %d", c.From, c.To)
	}
	for i := range c.Items {
		if err := validWebhook(&c.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *SettleWebhooks) validate() error {
	for _, id := range c.Acked {
		if !validName(id) {
			return errField("webhook ids")
		}
	}
	for _, w := range c.Dead {
		if !validName(w.ID) || len(w.LastError) > maxLastError || w.Attempts < 0 {
			return errField("dead webhooks with ids and errors of at most 4096 bytes")
		}
	}
	return nil
}

func (c *ClearWebhooks) validate() error {
	if !validHost(c.Host) {
		return errField("a shorter host")
	}
	return nil
}

func (c *RetryWebhooks) validate() error {
	if !validHost(c.Host) {
		return errField("a shorter host")
	}
	return nil
}

func (c *RotateSigningKey) validate() error {
	k := c.Key
	if len(k.Private) != ed25519.PrivateKeySize {
		return errField("an Ed25519 private key")
	}
	if !bytes.Equal(ed25519.NewKeyFromSeed(k.Private.Seed()), k.Private) {
		return fmt.Errorf("private key %s is inconsistent", k.ID)
	}
	if k.ID != signingKeyID(k.Public()) {
		return fmt.Errorf("key id %q is not the key's fingerprint", k.ID)
	}
	return nil
}

func (c *RetireSigningKeys) validate() error { return nil }

func (c *PutAPIKey) validate() error {
	k := c.Key
	if !validName(k.ID) || len(k.ID) > 128 || k.Secret == "" || len(k.Secret) > 1024 || len(k.Name) > maxName {
		return errField("a key id, a secret and a name of sane sizes")
	}
	return nil
}

func (c *DeleteAPIKey) validate() error {
	if !validName(c.ID) {
		return errField("a key id")
	}
	return nil
}

func validIdempotency(r *core.IdempotencyRecord) error {
	switch {
	case r.Key == "" || len(r.Key) > maxIdempotencyKey:
		return errField("an idempotency key of 1 to 512 bytes")
	case len(r.Result) > maxIdempotencyResult:
		return fmt.Errorf("result of %d bytes exceeds %d", len(r.Result), maxIdempotencyResult)
	case len(r.Owner) > maxName || len(r.Hash) > maxName:
		return errField("a shorter owner and hash")
	}
	return nil
}

func (c *ReserveIdempotency) validate() error {
	if c.TTL <= 0 {
		return errField("a positive ttl")
	}
	return validIdempotency(&c.Record)
}

func (c *CompleteIdempotency) validate() error { return validIdempotency(&c.Record) }

func (c *ForgetIdempotency) validate() error {
	if c.Key == "" || len(c.Key) > maxIdempotencyKey {
		return errField("an idempotency key of 1 to 512 bytes")
	}
	return nil
}
