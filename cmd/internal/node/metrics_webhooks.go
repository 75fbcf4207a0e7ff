package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/raftstore"
)

// Metrics of the webhook pipeline, of the node's cluster replica and of
// the plugins' hook calls. The
// names are fixed: dashboards use them. The outbox gauges describe the
// cluster's outbox (replicated, so every node reports the same figures;
// graph their max) or the single node's; the delivery counters and the
// latency histogram count what this node delivered while it led.
var (
	descWebhookPending  = desc("webhook_pending", "Webhooks waiting for delivery in the outbox.")
	descWebhookDead     = desc("webhook_dead", "Webhooks in the dead-letter list.")
	descWebhookOldest   = desc("webhook_oldest_pending_seconds", "Age of the oldest pending webhook (0 when none).")
	descWebhookDeliv    = desc("webhook_deliveries_total", "Webhook delivery attempts by outcome: ok (acknowledged), retry (failed, will be retried), dead (given up on).", "outcome")
	descWebhookLatency  = desc("webhook_delivery_latency_seconds", "Time from a presence event to the receiver's acknowledgement of its webhook.")
	descWebhookHookFail = desc("webhook_hook_failures_total", "Presence events whose plugins failed (they fail open: no webhook).")

	descRaftState   = desc("raft_state", "This node's raft role: 1 for the current one.", "state")
	descRaftTerm    = desc("raft_term", "The raft term this node is in.")
	descRaftApplied = desc("raft_applied_index", "The last log index applied to this node's state machine.")
	descRaftCommit  = desc("raft_commit_index", "The last log index this node knows committed.")
	descRaftApply   = desc("raft_apply_duration_seconds", "Round trip of the cluster writes made on this node (forwarding and commit included).")

	descPluginCall = desc("plugin_call_duration_seconds", "Plugin hook calls that ran, by plugin and hook.", "plugin", "hook")
	descPluginFail = desc("plugin_call_failures_total", "Failed plugin hook calls by plugin, hook and kind of failure.", "plugin", "hook", "kind")
)

// raftStates are the raft roles parley_raft_state reports.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

// webhookCollector reads the pipeline's and the replica's figures at
// scrape time.
type webhookCollector struct{ n *Node }

// Describe implements prometheus.Collector.
func (c webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWebhookPending, descWebhookDead, descWebhookOldest, descWebhookDeliv,
		descWebhookLatency, descWebhookHookFail, descRaftState, descRaftTerm, descRaftApplied, descRaftCommit, descRaftApply, descPluginCall, descPluginFail} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectPlugins(ch)
	w := c.n.webhooks()
	if s := c.n.store; s != nil {
		m := s.Metrics()
		c.collectRaft(ch, m)
		oldest := 0.0
		if !m.OldestPending.IsZero() {
			oldest = max(time.Since(m.OldestPending).Seconds(), 0)
		}
		c.collectOutbox(ch, m.WebhooksPending, m.WebhooksDead, oldest)
	} else if w != nil {
		pending := w.store.PendingWebhooks()
		var first time.Time
		for _, h := range pending {
			if first.IsZero() || h.Enqueued.Before(first) {
				first = h.Enqueued
			}
		}
		oldest := 0.0
		if !first.IsZero() {
			oldest = max(time.Since(first).Seconds(), 0)
		}
		c.collectOutbox(ch, len(pending), len(w.store.DeadWebhooks()), oldest)
	}
	if w == nil {
		return
	}
	st := w.pipe.Stats()
	for outcome, v := range map[string]uint64{"ok": st.Delivered, "retry": st.Retried, "dead": st.Dead} {
		ch <- prometheus.MustNewConstMetric(descWebhookDeliv, prometheus.CounterValue, float64(v), outcome)
	}
	ch <- prometheus.MustNewConstMetric(descWebhookHookFail, prometheus.CounterValue, float64(st.HookFailures))
	ch <- constHistogram(descWebhookLatency, st.Latency.Bounds, st.Latency.Counts, st.Latency.Count, st.Latency.Sum)
}

func (c webhookCollector) collectOutbox(ch chan<- prometheus.Metric, pending, dead int, oldest float64) {
	ch <- prometheus.MustNewConstMetric(descWebhookPending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(descWebhookDead, prometheus.GaugeValue, float64(dead))
	ch <- prometheus.MustNewConstMetric(descWebhookOldest, prometheus.GaugeValue, oldest)
}

func (c webhookCollector) collectRaft(ch chan<- prometheus.Metric, m raftstore.Metrics) {
	for _, s := range raftStates {
		v := 0.0
		if m.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(descRaftTerm, prometheus.GaugeValue, float64(m.Term))
	ch <- prometheus.MustNewConstMetric(descRaftApplied, prometheus.GaugeValue, float64(m.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(descRaftCommit, prometheus.GaugeValue, float64(m.CommitIndex))
	h := m.ApplyLatency
	ch <- constHistogram(descRaftApply, h.Bounds, h.Counts, h.Count, h.Sum)
}

// collectPlugins reports each loaded plugin's per-hook call latency and
// failures.
func (c webhookCollector) collectPlugins(ch chan<- prometheus.Metric) {
	if c.n.plugins == nil {
		return
	}
	for _, p := range c.n.plugins.List() {
		for _, h := range p.Stats.Hooks {
			bounds := make([]float64, len(h.Latency.Bounds))
			for i, b := range h.Latency.Bounds {
				bounds[i] = b.Seconds()
			}
			ch <- constHistogram(descPluginCall, bounds, h.Latency.Counts, h.Latency.Count, h.Latency.Sum.Seconds(), p.Name, string(h.Hook))
			for kind, v := range h.Failures {
				ch <- prometheus.MustNewConstMetric(descPluginFail, prometheus.CounterValue, float64(v), p.Name, string(h.Hook), string(kind))
			}
		}
	}
}

// constHistogram builds a histogram metric from cumulative bucket counts.
func constHistogram(d *prometheus.Desc, bounds []float64, counts []uint64, count uint64, sum float64, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		if i < len(counts) {
			buckets[b] = counts[i]
		}
	}
	return prometheus.MustNewConstHistogram(d, count, sum, buckets, labels...)
}
