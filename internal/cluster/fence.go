package cluster

import (
	"sync"
	"time"
)

// fence is the local side of something held in Redis with an expiry (a
// lease, a node's heartbeat): valid until a local deadline that each
// successful extension pushes back, lost at once when that deadline
// passes or Redis says it is gone. Lost is closed exactly once.
type fence struct {
	mu    sync.Mutex // guards the fields below
	until time.Time
	timer *time.Timer
	err   error

	lost chan struct{}
}

func newFence(until time.Time) *fence {
	f := &fence{until: until, lost: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timer = time.AfterFunc(time.Until(until), f.check)
	return f
}

// extend pushes the deadline back to until; it reports false when the
// fence is already lost (an extension that arrives too late changes
// nothing: the holder has already been told).
func (f *fence) extend(until time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false
	}
	if until.After(f.until) {
		f.until = until
		f.timer.Reset(time.Until(until))
	}
	return true
}

// check runs when the timer fires: lost if the deadline passed, else the
// timer is armed again for the new deadline.
func (f *fence) check() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	if d := time.Until(f.until); d > 0 {
		f.timer.Reset(d)
		return
	}
	f.err = ErrExpired
	close(f.lost)
}

// lose ends the fence with err, unless it has already ended.
func (f *fence) lose(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	f.err = err
	f.timer.Stop()
	close(f.lost)
}

// stop ends the fence's timer without closing lost (a release).
func (f *fence) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timer.Stop()
}

func (f *fence) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
