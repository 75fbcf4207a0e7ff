package raftstore

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// stallLog is a log store whose writes can be made to hang, like a disk
// that stopped answering.
type stallLog struct {
	raft.LogStore
	mu   sync.Mutex
	gate chan struct{} // non-nil while stalled
}

func (l *stallLog) wait() {
	l.mu.Lock()
	g := l.gate
	l.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (l *stallLog) stall() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gate == nil {
		l.gate = make(chan struct{})
	}
}

func (l *stallLog) resume() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gate != nil {
		close(l.gate)
		l.gate = nil
	}
}

func (l *stallLog) StoreLog(log *raft.Log) error {
	l.wait()
	return l.LogStore.StoreLog(log)
}

func (l *stallLog) StoreLogs(logs []*raft.Log) error {
	l.wait()
	return l.LogStore.StoreLogs(logs)
}

// IsMonotonic passes raft-wal's promise through.
func (l *stallLog) IsMonotonic() bool { return true }

func TestWatchdogFencesStalledLeader(t *testing.T) {
	stalls := map[string]*stallLog{}
	var mu sync.Mutex
	c := newClusterWith(t, 3, func(cfg *Config) {
		cfg.WatchdogInterval = 100 * time.Millisecond
		cfg.WatchdogTimeout = 500 * time.Millisecond
	}, func(id string) options {
		return options{wrapLogStore: func(ls raft.LogStore) raft.LogStore {
			sl := &stallLog{LogStore: ls}
			mu.Lock()
			stalls[id] = sl
			mu.Unlock()
			return sl
		}}
	})
	old := c.leader(15 * time.Second)
	mu.Lock()
	sl := stalls[old.id]
	mu.Unlock()
	defer sl.resume()
	start := time.Now()
	sl.stall()

	var nl *testNode
	eventually(t, 30*time.Second, "a leader other than the stalled one", func() bool {
		for _, nd := range c.nodes {
			if nd != old && nd.s.raft.State() == raft.Leader {
				nl = nd
				return true
			}
		}
		return false
	})
	t.Logf("new leader %s %v after the leader's disk stalled", nl.id, time.Since(start).Round(time.Millisecond))
	if _, err := nl.s.ClaimRoom(ctxT(t, 10*time.Second), "after-stall", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.s.Fatal():
		if !errors.Is(old.s.FatalErr(), ErrStalled) {
			t.Fatalf("fatal error = %v", old.s.FatalErr())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the stalled leader did not report itself fatal")
	}
	sl.resume() // let its raft finish shutting down
	c.stop(old)
}
