package client

import "sync"

// queue is an unbounded FIFO for many producers and one consumer. Producers
// never block, which keeps the signaling read loop and pion's callback
// goroutines free of user code.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	signal chan struct{} // capacity 1: "items may be waiting"
}

func newQueue[T any]() *queue[T] {
	return &queue[T]{signal: make(chan struct{}, 1)}
}

// push appends v. It reports false, dropping v, once the queue is closed.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.wake()
	return true
}

func (q *queue[T]) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// close stops further pushes. Items already queued are still popped.
func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

// pop returns the oldest item, waiting for one. It reports false when the
// queue is closed and drained, or when stop is closed (nil stop never is).
func (q *queue[T]) pop(stop <-chan struct{}) (T, bool) {
	var zero T
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			v := q.items[0]
			q.items[0] = zero
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return zero, false
		}
		select {
		case <-q.signal:
		case <-stop:
			return zero, false
		}
	}
}
