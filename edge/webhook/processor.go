package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/parleyhq/parley/core"
)

// processor runs the Hook over committed journal entries in order and
// enqueues the webhooks they produce, advancing the cursor in the same
// write, so no event is skipped or processed twice across leader changes.
type processor struct {
	cfg     Config
	store   Journal
	hook    Hook
	log     *slog.Logger
	m       *metrics
	wake    nudge
	onQueue func() // called after webhooks were enqueued
}

func newProcessor(cfg Config, store Journal, hook Hook, log *slog.Logger, m *metrics, onQueue func()) *processor {
	return &processor{cfg: cfg, store: store, hook: hook, log: log, m: m, wake: newNudge(), onQueue: onQueue}
}

// Notify nudges the processor to read the journal now; it never blocks.
func (p *processor) Notify() { p.wake.notify() }

// Run processes the journal until ctx ends.
func (p *processor) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	errDelay := p.cfg.PollInterval
	for {
		more, err := p.step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, core.ErrConflict):
			p.log.Info("webhook cursor moved by another writer; re-reading the journal", "err", err)
			continue
		case err != nil:
			p.log.Warn("enqueueing webhooks failed; will retry", "err", err, "in", errDelay)
			t.Reset(errDelay)
			errDelay = min(errDelay*2, 5*time.Second)
		case more:
			errDelay = p.cfg.PollInterval
			continue
		default:
			errDelay = p.cfg.PollInterval
			t.Reset(p.cfg.PollInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}
}

// step processes one batch; more reports that the batch was full.
func (p *processor) step(ctx context.Context) (more bool, err error) {
	cursor := p.store.WebhookCursor()
	entries, dropped := p.store.PresenceJournal(cursor, p.cfg.JournalBatch)
	if len(entries) == 0 && dropped == 0 {
		return false, nil
	}
	to := cursor + dropped
	if len(entries) > 0 {
		to = entries[len(entries)-1].Seq
	}
	var items []core.Webhook
	var at []time.Time
	for _, e := range entries {
		whs, ok := p.run(ctx, e)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if !ok {
			continue
		}
		for i, w := range whs {
			items = append(items, fill(w, e, i))
			at = append(at, e.Event.At)
		}
	}
	for i, w := range items {
		p.m.rememberEvent(w.ID, at[i])
	}
	if err := p.store.EnqueueWebhooks(ctx, cursor, to, items); err != nil {
		return false, err
	}
	if dropped > 0 {
		p.m.dropd.Add(dropped)
		p.log.Warn("presence journal entries were trimmed before their webhooks were made", "dropped", dropped, "after", cursor)
	}
	p.m.events.Add(uint64(len(entries)))
	p.m.enqueued.Add(uint64(len(items)))
	if len(items) > 0 && p.onQueue != nil {
		p.onQueue()
	}
	return len(entries) == p.cfg.JournalBatch, nil
}

// run calls the hook on one entry, retrying transient errors with backoff;
// ok is false when the event fails open.
func (p *processor) run(ctx context.Context, e core.JournalEntry) ([]core.Webhook, bool) {
	if p.hook == nil {
		return nil, true
	}
	delay := p.cfg.HookBackoff
	for try := 1; ; try++ {
		whs, err := p.hook.Webhooks(ctx, e.Event)
		if err == nil {
			return whs, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		if !transient(err) || try >= p.cfg.HookTries {
			p.m.hookFail.Add(1)
			p.log.Error("presence hook failed; the event produces no webhooks", "seq", e.Seq, "event", e.Event.ID,
				"kind", e.Event.Kind, "room", e.Event.Room, "tries", try, "err", err)
			return nil, false
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// jsonBody returns body, or the JSON null for an empty one (what a
// webhook without a body is sent, and stored, as).
func jsonBody(body json.RawMessage) json.RawMessage {
	if len(body) == 0 {
		return json.RawMessage("null")
	}
	return body
}

func transient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

// fill completes a webhook the hook returned: a stable id derived from
// the event when the hook left it empty, Host from URL.
func fill(w core.Webhook, e core.JournalEntry, i int) core.Webhook {
	if w.ID == "" {
		h := sha256.New()
		evID := e.Event.ID
		if evID == "" {
			evID = "seq:" + strconv.FormatUint(e.Seq, 10)
		}
		h.Write([]byte(evID + "\x00" + strconv.Itoa(i) + "\x00" + w.Plugin + "\x00" + w.URL))
		w.ID = "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
	}
	if w.Host == "" {
		if u, err := url.Parse(w.URL); err == nil {
			w.Host = u.Hostname()
		}
	}
	w.Body = jsonBody(w.Body)
	w.Seq, w.Enqueued = 0, time.Time{}
	return w
}
