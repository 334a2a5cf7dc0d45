package session

import "context"

// sessionLock serialises the actions on one session (start, stop, invite,
// remove, invite_reply, and the background ends and readiness): the holder
// does the session's storage, process and endpoint I/O without Manager.mu,
// so actions on other sessions, page loads, joins, Get and List never wait
// for it.
//
// It is a one-slot channel rather than a sync.Mutex so that waiting for it
// honours a context.
type sessionLock struct {
	slot chan struct{}
	refs int // holders and waiters; guarded by Manager.mu
}

// lockSession takes the lock of session id, waiting until ctx ends or
// abort is closed (nil: never). The caller must call unlock exactly once.
// Locks exist only while someone holds or waits for them.
func (m *Manager) lockSession(ctx context.Context, id int64, abort <-chan struct{}) (unlock func(), err error) {
	m.mu.Lock()
	sl := m.locks[id]
	if sl == nil {
		sl = &sessionLock{slot: make(chan struct{}, 1)}
		m.locks[id] = sl
	}
	sl.refs++
	m.mu.Unlock()
	select {
	case sl.slot <- struct{}{}:
		return func() {
			<-sl.slot
			m.dropLock(id, sl)
		}, nil
	case <-ctx.Done():
		err = &Error{Code: CodeUnavailable, Text: "session busy, try again", Err: ctx.Err()}
	case <-abort:
		err = errClosed
	}
	m.dropLock(id, sl)
	return nil, err
}

func (m *Manager) dropLock(id int64, sl *sessionLock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sl.refs--
	if sl.refs == 0 {
		delete(m.locks, id)
	}
}
