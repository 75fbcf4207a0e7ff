package raftstore

import (
	"context"
	"sync"

	"github.com/parleyhq/parley/core"
)

// maxWatchQueue is how many events may wait for one watcher before they
// are replaced by a single ClusterResync.
const maxWatchQueue = 65536

// hub fans committed events out to watchers. publish never blocks: each
// watcher has its own queue and goroutine.
type hub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	closed   bool
	wg       sync.WaitGroup
}

type watcher struct {
	fn    func(core.ClusterEvent)
	mu    sync.Mutex
	queue []core.ClusterEvent
	wake  chan struct{} // capacity 1
}

func newHub() *hub { return &hub{watchers: map[*watcher]struct{}{}} }

// publish queues evs for every watcher.
func (h *hub) publish(evs []core.ClusterEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		w.push(evs)
	}
}

func (w *watcher) push(evs []core.ClusterEvent) {
	w.mu.Lock()
	if len(evs) > 0 && len(w.queue)+len(evs) > maxWatchQueue {
		last := evs[len(evs)-1].Index
		w.queue = append(w.queue[:0], core.ClusterEvent{Kind: core.ClusterResync, Index: last, Reason: "watcher fell behind"})
	} else {
		w.queue = append(w.queue, evs...)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// watch starts a watcher that calls fn until ctx is done or the hub closes.
func (h *hub) watch(ctx context.Context, fn func(core.ClusterEvent)) {
	w := &watcher{fn: fn, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.watchers[w] = struct{}{}
	h.wg.Add(1)
	go h.run(ctx, w)
}

// run delivers w's events until ctx is done or the hub closes.
func (h *hub) run(ctx context.Context, w *watcher) {
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		delete(h.watchers, w)
		h.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { w.push(nil) })
	defer stop()
	for {
		<-w.wake
		if ctx.Err() != nil || h.isClosed() {
			return
		}
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, ev := range batch {
			if ctx.Err() != nil || h.isClosed() {
				return
			}
			w.fn(ev)
		}
	}
}

func (h *hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// close stops every watcher and waits for their goroutines.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for w := range h.watchers {
		w.push(nil)
	}
	h.mu.Unlock()
	h.wg.Wait()
}
