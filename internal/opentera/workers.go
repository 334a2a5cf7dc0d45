package opentera

import "sync"

// workers runs jobs on a fixed number of goroutines with a bounded queue,
// so a slow RPC never blocks the Redis subscriber and a flood of them is
// refused instead of piling up.
type workers struct {
	mu     sync.RWMutex // guards closed against sends on the closed channel
	closed bool
	jobs   chan func()
	wg     sync.WaitGroup
}

func newWorkers(n, queue int) *workers {
	w := &workers{jobs: make(chan func(), queue)}
	for range n {
		w.wg.Go(func() {
			for job := range w.jobs {
				job()
			}
		})
	}
	return w
}

// submit queues job; false when the queue is full or the pool is closed.
func (w *workers) submit(job func()) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	select {
	case w.jobs <- job:
		return true
	default:
		return false
	}
}

// close refuses new jobs, runs the queued ones and waits for them all.
func (w *workers) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.jobs)
	}
	w.mu.Unlock()
	w.wg.Wait()
}
