package core

import (
	"crypto/ed25519"
	"encoding/json"
	"time"
)

// Webhook is one webhook request in the durable outbox: what a presence
// plugin asked to send, plus the bookkeeping of its delivery. The outbox
// (the cluster's Raft state or a single node's webhook store) keeps it
// until a receiver acknowledges it, the operator clears it, or it
// dead-letters.
type Webhook struct {
	// ID is the Standard Webhooks "webhook-id": stable across retries,
	// restarts and leader changes, so receivers de-duplicate by it.
	ID string `json:"id"`
	// Seq orders the outbox; assigned by the store at enqueue.
	Seq uint64 `json:"seq,omitempty"`
	// Room orders delivery: webhooks of one room go out one at a time in
	// Seq order. Empty means no ordering constraint.
	Room   string `json:"room,omitempty"`
	Event  string `json:"event,omitempty"`  // e.g. "participant.joined"
	Plugin string `json:"plugin,omitempty"` // the plugin that asked for it
	Target string `json:"target,omitempty"` // operator-visible receiver name
	URL    string `json:"url"`
	// Host is the receiver's host (from URL); list and clear filter by it.
	Host    string            `json:"host"`
	Body    json.RawMessage   `json:"body"`
	Headers map[string]string `json:"headers,omitempty"`
	// Secret, when set, adds a "v1" HMAC-SHA256 signature.
	Secret   string    `json:"secret,omitempty"`
	Enqueued time.Time `json:"enqueued"` // set by the store at enqueue (or retry)

	// Dead-letter bookkeeping, set when the webhook is given up on.
	Attempts  int       `json:"attempts,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Died      time.Time `json:"died,omitzero"`
}

// SigningKey is an Ed25519 key the cluster signs webhooks with. The
// public halves are served at /pki. During a rotation two keys exist: the
// new one (Active) and the previous one; webhooks are signed with both.
type SigningKey struct {
	ID      string             `json:"id"` // short fingerprint of the public key
	Private ed25519.PrivateKey `json:"private"`
	Created time.Time          `json:"created"`
	Active  bool               `json:"active"`
}

// Public returns the public half of the key.
func (k SigningKey) Public() ed25519.PublicKey {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Private.Public().(ed25519.PublicKey)
}

// APIKey is a server API credential. Secret signs requests (HMAC) or
// bearer tokens; it is stored in cluster state and shown once at creation.
type APIKey struct {
	ID      string    `json:"id"`   // public key id, "AK..."
	Name    string    `json:"name"` // operator's label
	Secret  string    `json:"secret"`
	Created time.Time `json:"created"`
}

// IdempotencyRecord remembers the outcome of a server API request made
// with an Idempotency-Key, so a retry returns the first result.
type IdempotencyRecord struct {
	Key     string    `json:"key"`     // scoped by the caller: API key id + ":" + Idempotency-Key
	Owner   string    `json:"owner"`   // node that runs the request
	Hash    string    `json:"hash"`    // digest of the request (method, path, body); a reuse with another request is a conflict
	Done    bool      `json:"done"`    // false while the first request still runs
	Status  int       `json:"status"`  // HTTP status of the first response
	Result  []byte    `json:"result"`  // its body
	Expires time.Time `json:"expires"` // forgotten after this
}
