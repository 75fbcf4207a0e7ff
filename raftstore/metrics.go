package raftstore

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Metrics is a snapshot of what an operator graphs about one node's
// replica: its raft role, the log's progress, how long writes take and
// the webhook pipeline's backlog. Every field is read from this node
// alone; the outbox figures are the local replica's (the leader's are
// the current ones).
type Metrics struct {
	// State is the raft role: "Follower", "Candidate", "Leader" or
	// "Shutdown".
	State  string
	Leader bool // State == "Leader"
	Term   uint64
	// LastLogIndex, CommitIndex and AppliedIndex are raft's last log
	// entry, its commit index and the last command the state machine
	// applied.
	LastLogIndex uint64
	CommitIndex  uint64
	AppliedIndex uint64
	// LastContact is when a follower last heard from the leader; zero on
	// the leader and before any contact.
	LastContact time.Time
	// ApplyLatency is the distribution of Apply round trips made on this
	// node (forwarding, commit and the state machine's answer included),
	// successful or not.
	ApplyLatency Histogram

	WebhooksPending int       // webhooks waiting for delivery
	WebhooksDead    int       // dead letters kept
	WebhooksEvicted uint64    // dead letters evicted beyond the list's bound
	OldestPending   time.Time // Enqueued of the oldest pending webhook; zero if none
	// JournalBacklog is how many presence entries the webhook pipeline
	// has not processed (journal sequence minus cursor); JournalDropped
	// counts those evicted unprocessed.
	JournalBacklog uint64
	JournalDropped uint64
	SigningKeys    int // 1 normally, 2 during a rotation
}

// Histogram is a latency distribution in the Prometheus shape: Counts[i]
// is the number of observations of at most Bounds[i] seconds
// (cumulative); Count and Sum (seconds) cover all of them.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// applyBounds are the apply latency buckets, in seconds.
var applyBounds = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// latencies records durations into applyBounds. The zero value is ready;
// it is safe for concurrent use.
type latencies struct {
	buckets [len(applyBounds) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

func (l *latencies) observe(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(applyBounds) && sec > applyBounds[i] {
		i++
	}
	l.buckets[i].Add(1)
	l.sumNs.Add(uint64(max(d, 0)))
	l.count.Add(1)
}

func (l *latencies) histogram() Histogram {
	h := Histogram{Bounds: applyBounds[:], Counts: make([]uint64, len(applyBounds))}
	var cum uint64
	for i := range applyBounds {
		cum += l.buckets[i].Load()
		h.Counts[i] = cum
	}
	h.Count = cum + l.buckets[len(applyBounds)].Load()
	h.Sum = time.Duration(l.sumNs.Load()).Seconds()
	return h
}

// IsLeader reports whether this node is the raft leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Metrics returns this node's metrics. It is cheap enough to call on
// every scrape.
func (s *Store) Metrics() Metrics {
	rs := s.raft.State()
	m := Metrics{
		State: rs.String(), Leader: rs == raft.Leader, Term: s.raft.CurrentTerm(),
		LastLogIndex: s.raft.LastIndex(), CommitIndex: s.raft.CommitIndex(),
		ApplyLatency: s.latency.histogram(),
	}
	if rs != raft.Leader {
		m.LastContact = s.raft.LastContact()
	}
	s.fsm.read(func(st *state) {
		m.AppliedIndex = st.Applied
		m.WebhooksPending, m.WebhooksDead = len(st.Outbox.Items), len(st.Outbox.Dead)
		m.WebhooksEvicted = st.Outbox.Evicted
		m.OldestPending = oldestPending(st.Outbox.Items)
		m.JournalBacklog = st.Journal.Seq - min(st.Outbox.Cursor, st.Journal.Seq)
		m.JournalDropped = st.Journal.Dropped
		m.SigningKeys = len(st.SigningKeys)
	})
	return m
}
