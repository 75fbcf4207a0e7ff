package raftstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/core"
)

// fsm is the raft.FSM over state. hashicorp/raft calls Apply, Snapshot and
// Restore from its one FSM goroutine; Persist runs on another goroutine
// over a copy. Readers take the read lock.
type fsm struct {
	mu        sync.RWMutex
	st        *state
	appliedCh chan struct{} // closed and replaced whenever st.Applied moves

	// publish hands a command's events to the watchers. It must not block:
	// delivery happens on the watchers' goroutines, outside Apply.
	publish func([]core.ClusterEvent)
}

var _ raft.FSM = (*fsm)(nil)

func newFSM(publish func([]core.ClusterEvent)) *fsm {
	return &fsm{st: newState(), appliedCh: make(chan struct{}), publish: publish}
}

// Apply decodes and applies one committed command. A command that does not
// decode is answered with ErrBadCommand on every replica alike.
func (f *fsm) Apply(l *raft.Log) any {
	cmd, err := DecodeCommand(l.Data)
	em := emitter{index: l.Index}
	f.mu.Lock()
	res := f.applyLocked(l.Index, cmd, err, &em)
	ch := f.appliedCh
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	if len(em.events) > 0 {
		f.publish(em.events)
	}
	return res
}

func (f *fsm) applyLocked(idx uint64, cmd Command, decodeErr error, em *emitter) Result {
	f.st.Applied = idx
	if decodeErr != nil {
		res := failed(ErrBadCommand, "%v", decodeErr)
		res.Index = idx
		return res
	}
	rid := cmd.Head().RequestID
	if res, ok := f.st.Dedupe.get(rid); ok {
		res.Duplicate = true
		return res
	}
	res := f.st.apply(idx, cmd, em)
	res.Index = idx
	f.st.Dedupe.put(rid, res)
	return res
}

// read runs fn over the state under the read lock. fn must not keep
// references into maps beyond the call.
func (f *fsm) read(fn func(s *state)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

// applied returns the index of the last command applied.
func (f *fsm) applied() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.Applied
}

// waitApplied returns once a command at index idx or later was applied.
func (f *fsm) waitApplied(ctx context.Context, idx uint64) error {
	for {
		f.mu.RLock()
		done, ch := f.st.Applied >= idx, f.appliedCh
		f.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Snapshot copies the state; Persist writes the copy while Apply goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{st: f.st.clone()}, nil
}

// Snapshot format: a magic, a version byte, then the state as JSON.
const (
	snapshotMagic   = "PRLYSNAP"
	snapshotVersion = 1
)

// Restore replaces the state with a snapshot's and tells the watchers to
// resynchronise.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	ch := f.appliedCh
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
	close(ch)
	f.publish([]core.ClusterEvent{{Kind: core.ClusterResync, Index: st.Applied, Reason: "snapshot restored"}})
	return nil
}

func readSnapshot(r io.Reader) (*state, error) {
	br := bufio.NewReader(r)
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, fmt.Errorf("raftstore: snapshot header: %w", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("raftstore: not a Parley snapshot")
	}
	if v := head[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("raftstore: snapshot version %d is not supported", v)
	}
	st := &state{}
	if err := json.NewDecoder(br).Decode(st); err != nil {
		return nil, fmt.Errorf("raftstore: snapshot body: %w", err)
	}
	st.fill()
	return st, nil
}

func writeSnapshot(w io.Writer, st *state) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(snapshotMagic)
	bw.WriteByte(snapshotVersion)
	if err := json.NewEncoder(bw).Encode(st); err != nil {
		return err
	}
	return bw.Flush()
}

type fsmSnapshot struct{ st *state }

// Persist writes the snapshot to sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.st); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release drops the copy.
func (s *fsmSnapshot) Release() { s.st = nil }
