package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/core"
	"github.com/parleyhq/parley/edge/webhook"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/raftstore"
)

// Presence webhooks (issue 5). Presence events are journaled durably with
// the state change that caused them: in a cluster by raftstore (the
// control plane's presence goes to the cluster, and the FSM journals room
// and node-failure events itself), on a single node by a webhook.FileStore
// in the data dir. A webhook.Pipeline runs the presence plugins over the
// journal and delivers the webhooks they ask for: on the single node all
// the time, in a cluster on the leader only, started and stopped as
// leadership comes and goes. The plugin host never sees presence directly,
// so a webhook is asked for once per event, whichever node saw it.

// leaderPoll is how often a clustered node checks whether it leads.
const leaderPoll = 100 * time.Millisecond

// webhookStore is the durable outbox the pipeline runs over and the
// operator administers: raftstore.Store or webhook.FileStore. Its methods
// are safe for concurrent use.
type webhookStore interface {
	webhook.Store
	DeadWebhooks() []core.Webhook
	ClearWebhooks(ctx context.Context, host string, dead bool) (int, error)
	RetryWebhooks(ctx context.Context, host string) (int, error)
	RotateSigningKey(ctx context.Context) (core.SigningKey, error)
	RetireSigningKeys(ctx context.Context) (int, error)
}

// nodeWebhooks is a node's webhook pipeline over its store. run (or
// follow, in a cluster) starts the goroutines that own the pipeline; stop
// ends them and waits. Its methods are safe for concurrent use.
type nodeWebhooks struct {
	log   *slog.Logger
	store webhookStore
	file  *webhook.FileStore // the single node's store; nil in a cluster
	pipe  *webhook.Pipeline

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	leading bool
	waiting time.Time // since when a leader waits for its plugins; zero when not
	warned  time.Time // last "waiting for plugins" warning
}

// waitingForPlugins notes that the pipeline waits for plugin to load and
// warns, every 10 s, once that took more than 5 s.
func (w *nodeWebhooks) waitingForPlugins(plugin string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.waiting.IsZero() {
		w.waiting = now
	}
	if now.Sub(w.waiting) < 5*time.Second || now.Sub(w.warned) < 10*time.Second {
		return
	}
	w.warned = now
	w.log.Warn("webhook pipeline waits until this node has loaded the cluster's plugins", "plugin", plugin,
		"waiting", now.Sub(w.waiting).Round(time.Second))
}

// newNodeWebhooks prepares the pipeline over store with the node's plugins
// as its hook.
func newNodeWebhooks(cfg webhook.Config, store webhookStore, pm *plugins.Manager, log *slog.Logger) (*nodeWebhooks, error) {
	var hook webhook.Hook
	if pm != nil {
		hook = pluginHook{pm}
	}
	pipe, err := webhook.New(cfg, store, hook, log)
	if err != nil {
		return nil, fmt.Errorf("node: webhooks: %w", err)
	}
	return &nodeWebhooks{log: log, store: store, pipe: pipe}, nil
}

// openFileWebhooks opens the single node's durable webhook store in dir,
// makes sure it has a signing key, and prepares the pipeline over it.
func openFileWebhooks(cfg webhook.Config, dir string, pm *plugins.Manager, log *slog.Logger) (*nodeWebhooks, error) {
	fs, err := webhook.OpenFileStore(dir, log)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := fs.EnsureSigningKey(ctx); err != nil {
		_ = fs.Close()
		return nil, fmt.Errorf("node: webhook signing key: %w", err)
	}
	w, err := newNodeWebhooks(cfg, fs, pm, log)
	if err != nil {
		_ = fs.Close()
		return nil, err
	}
	w.file = fs
	fs.OnCommit(w.pipe.Notify)
	return w, nil
}

// run starts the pipeline (the single node's, which always runs) until
// stop.
func (w *nodeWebhooks) run() {
	w.start(func(ctx context.Context) { _ = w.pipe.Run(ctx) })
}

// follow runs the pipeline while isLeader holds, checking every
// leaderPoll, until stop.
func (w *nodeWebhooks) follow(isLeader func() bool) {
	w.start(func(ctx context.Context) { w.followLoop(ctx, isLeader) })
}

// start runs fn on a goroutine until stop cancels its context; it does
// nothing when something was started already.
func (w *nodeWebhooks) start(fn func(ctx context.Context)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w.cancel, w.done = cancel, done
	go func() {
		defer close(done)
		fn(ctx)
	}()
}

// followLoop starts the pipeline when this node becomes the leader and
// stops it (waiting for its goroutines) when it no longer is, until ctx
// ends. A deposed leader may deliver for up to leaderPoll more: receivers
// see duplicates with the same webhook-id, and the store's compare-and-set
// cursor keeps it from enqueueing anything twice.
func (w *nodeWebhooks) followLoop(ctx context.Context, isLeader func() bool) {
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	var stopRun func() // set while the pipeline runs
	defer func() {
		if stopRun != nil {
			stopRun()
		}
	}()
	for {
		lead := isLeader()
		switch {
		case lead && stopRun == nil:
			stopRun = w.startRun(ctx)
			w.log.Info("webhook pipeline started: this node leads")
		case !lead && stopRun != nil:
			stopRun()
			stopRun = nil
			w.log.Info("webhook pipeline stopped: this node no longer leads")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startRun runs the pipeline under ctx until the returned function is
// called, which waits for it.
func (w *nodeWebhooks) startRun(ctx context.Context) func() {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.pipe.Run(rctx)
	}()
	w.setLeading(true)
	return func() {
		cancel()
		<-done
		w.setLeading(false)
	}
}

func (w *nodeWebhooks) setLeading(b bool) {
	w.mu.Lock()
	w.leading = b
	w.mu.Unlock()
}

// running reports whether the pipeline runs on this node now.
func (w *nodeWebhooks) running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leading || (w.file != nil && w.cancel != nil)
}

// notify nudges the pipeline: new presence committed, or webhooks retried.
func (w *nodeWebhooks) notify() {
	if w != nil {
		w.pipe.Notify()
	}
}

// stop ends the pipeline and waits for its goroutines. It can be called
// more than once.
func (w *nodeWebhooks) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// close stops the pipeline and closes the single node's store.
func (w *nodeWebhooks) close() {
	if w == nil {
		return
	}
	w.stop()
	if w.file != nil {
		if err := w.file.Close(); err != nil {
			w.log.Warn("close the webhook store", "err", err)
		}
	}
}

// pluginHook is the pipeline's webhook.Hook over the plugin host: the
// presence plugins run over one event and the webhook requests they make
// become outbox entries.
type pluginHook struct{ pm *plugins.Manager }

// Webhooks implements webhook.Hook. A transient failure is returned as
// is, so that the pipeline runs the event again (the webhooks of the
// plugins that succeeded come back with the same ids then). A
// deterministic failure of some plugins does not hold back the webhooks
// of the others: presence fails open per plugin (the failure is logged and
// counted in the plugin's statistics).
func (h pluginHook) Webhooks(ctx context.Context, ev core.PresenceEvent) ([]core.Webhook, error) {
	reqs, err := h.pm.PresenceWebhooks(ctx, ev)
	out := make([]core.Webhook, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, outboxEntry(ev, r))
	}
	if err != nil && len(out) > 0 && !plugins.IsTransient(err) {
		err = nil
	}
	return out, err
}

// outboxEntry turns a plugin's webhook request into an outbox entry of ev.
func outboxEntry(ev core.PresenceEvent, w plugins.Webhook) core.Webhook {
	r := w.Request
	host := ""
	if u, err := url.Parse(r.URL); err == nil {
		host = strings.ToLower(u.Host)
	}
	return core.Webhook{
		ID: r.ID, Room: ev.Room, Event: r.Event, Plugin: w.Plugin, Target: r.Target,
		URL: r.URL, Host: host, Body: r.Body, Headers: r.Headers, Secret: r.Secret,
	}
}

// webhookAdmin is the node's webhook administration for the server API
// (GET/DELETE /v1/webhooks, POST /v1/webhooks/retry): the outbox of the
// cluster, or of the single node.
type webhookAdmin struct{ n *Node }

var errNoWebhookStore = core.Errorf(core.CodeUnavailable, "the webhook outbox is not open yet")

func (a webhookAdmin) store() (*nodeWebhooks, error) {
	if w := a.n.webhooks(); w != nil {
		return w, nil
	}
	return nil, errNoWebhookStore
}

// List returns the pending webhooks (or the dead ones) of receiver host,
// all hosts when host is empty.
func (a webhookAdmin) List(_ context.Context, dead bool, host string) ([]core.Webhook, error) {
	w, err := a.store()
	if err != nil {
		return nil, err
	}
	list := w.store.PendingWebhooks()
	if dead {
		list = w.store.DeadWebhooks()
	}
	out := list[:0:0]
	for _, h := range list {
		if hostMatches(h.Host, host) {
			out = append(out, h)
		}
	}
	return out, nil
}

// Clear drops the pending (or dead) webhooks of host, all when empty.
func (a webhookAdmin) Clear(ctx context.Context, host string, dead bool) (int, error) {
	w, err := a.store()
	if err != nil {
		return 0, err
	}
	n, err := w.store.ClearWebhooks(ctx, host, dead)
	w.notify()
	return n, wrapStoreErr(err)
}

// Retry moves the dead webhooks of host (all when empty) back to the
// pending list.
func (a webhookAdmin) Retry(ctx context.Context, host string) (int, error) {
	w, err := a.store()
	if err != nil {
		return 0, err
	}
	n, err := w.store.RetryWebhooks(ctx, host)
	w.notify()
	return n, wrapStoreErr(err)
}

// SigningKeys returns the webhook signing keys, the active one first.
func (a webhookAdmin) SigningKeys() []core.SigningKey {
	if w := a.n.webhooks(); w != nil {
		return w.store.SigningKeys()
	}
	return nil
}

// RotateSigningKey makes a new active signing key; the previous one stays
// (webhooks are signed with both) until RetireSigningKeys.
func (a webhookAdmin) RotateSigningKey(ctx context.Context) (core.SigningKey, error) {
	w, err := a.store()
	if err != nil {
		return core.SigningKey{}, err
	}
	k, err := w.store.RotateSigningKey(ctx)
	return k, wrapStoreErr(err)
}

// RetireSigningKeys drops the inactive signing keys.
func (a webhookAdmin) RetireSigningKeys(ctx context.Context) (int, error) {
	w, err := a.store()
	if err != nil {
		return 0, err
	}
	n, err := w.store.RetireSigningKeys(ctx)
	return n, wrapStoreErr(err)
}

// hostMatches reports whether a webhook's host is host (host[:port], as
// in its URL), ignoring case, as the stores' Clear and Retry match it;
// every host matches "".
func hostMatches(webhookHost, host string) bool {
	return host == "" || strings.EqualFold(webhookHost, host)
}

// wrapStoreErr gives a store failure a code the API maps to a status: a
// core error keeps its own, anything else is "unavailable".
func wrapStoreErr(err error) error {
	if err == nil {
		return nil
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	return &core.Error{Code: core.CodeUnavailable, Message: "webhook outbox: " + err.Error(), Err: err}
}

// webhooks returns the node's pipeline, or nil (a cluster member before
// Start).
func (n *Node) webhooks() *nodeWebhooks { return n.hooks.Load() }

// openWebhooks opens the single node's webhook store and pipeline; a
// cluster member's come with its replica (followWebhooks).
func (n *Node) openWebhooks() error {
	if n.clustered {
		return nil
	}
	w, err := openFileWebhooks(n.cfg.webhookConfig(), n.paths.WebhookDir, n.plugins, n.log.With("part", "webhooks"))
	if err != nil {
		return err
	}
	n.hooks.Store(w)
	return nil
}

// runWebhooks starts the single node's pipeline.
func (n *Node) runWebhooks() {
	if w := n.webhooks(); w != nil && w.file != nil {
		w.run()
	}
}

// followWebhooks prepares the pipeline over the cluster's replica and runs
// it whenever this node leads.
func (n *Node) followWebhooks(s *raftstore.Store) error {
	w, err := newNodeWebhooks(n.cfg.webhookConfig(), s, n.plugins, n.log.With("part", "webhooks"))
	if err != nil {
		return err
	}
	n.hooks.Store(w)
	w.follow(func() bool { return s.IsLeader() && n.pluginsCurrent(w) })
	return nil
}

// pluginsCurrent reports whether every plugin of the cluster's plugin set
// is loaded here with the cluster's module. A node that just took the lead
// may not have loaded them yet (they load in the background); running the
// pipeline before would process presence events without their presence
// plugins, and the webhooks those would have asked for would never exist.
func (n *Node) pluginsCurrent(w *nodeWebhooks) bool {
	loaded := map[string]string{}
	for _, in := range n.plugins.List() {
		loaded[in.Name] = in.SHA256
	}
	for _, rec := range n.store.Plugins() {
		if !strings.EqualFold(loaded[rec.Name], rec.SHA256) {
			w.waitingForPlugins(rec.Name)
			return false
		}
	}
	w.mu.Lock()
	w.waiting = time.Time{}
	w.mu.Unlock()
	return true
}

// notifyWebhooks nudges the leader's pipeline on committed changes that
// may journal presence.
func (n *Node) notifyWebhooks(kind core.ClusterEventKind) {
	switch kind {
	case core.ClusterPresence, core.ClusterRoomClaimed, core.ClusterRoomReleased, core.ClusterNodeChanged, core.ClusterResync:
		n.webhooks().notify()
	}
}

// WebhooksRunning reports whether this node runs the webhook pipeline now:
// a single node always, a cluster member while it leads.
func (n *Node) WebhooksRunning() bool {
	w := n.webhooks()
	return w != nil && w.running()
}

// shutdownDrain bounds how long a stopping single node waits for its
// pipeline to deliver what is queued (the leave webhooks of the
// participants the shutdown removed, typically).
const shutdownDrain = 2 * time.Second

// drainWebhooks gives a stopping single node's pipeline up to
// shutdownDrain (or until ctx ends) to process its journal and empty its
// outbox. What is left stays in the store and goes out at the next start.
// A cluster member does not wait: the leader's pipeline (on another node
// if this one led) delivers.
func (n *Node) drainWebhooks(ctx context.Context) {
	w := n.webhooks()
	if w == nil || w.file == nil || !w.running() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, shutdownDrain)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		journal, _ := w.file.PresenceJournal(w.file.WebhookCursor(), 1)
		if len(journal) == 0 && len(w.file.PendingWebhooks()) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			w.log.Info("stopping with webhooks queued; they go out at the next start", "pending", len(w.file.PendingWebhooks()))
			return
		case <-t.C:
		}
	}
}

// closeWebhooks stops the pipeline and closes the single node's store.
func (n *Node) closeWebhooks() { n.webhooks().close() }

// presenceSink is where the control plane reports presence: the
// configured extra sink, if any, then the durable journal (the cluster's,
// or the single node's webhook store).
func (n *Node) presenceSink() core.Presence {
	var chain presenceChain
	if n.cfg.Presence != nil {
		chain = append(chain, n.cfg.Presence)
	}
	if n.cluster != nil {
		chain = append(chain, n.cluster)
	} else if w := n.webhooks(); w != nil {
		chain = append(chain, w.file)
	}
	return chain
}
