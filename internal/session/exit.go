package session

import "context"

// Exiter is an Endpoint that can end on its own: a session running in a
// child process that crashed or was killed. Done is closed once it has
// ended, whether through Stop or not; Err then says why. The Manager
// watches every registered Exiter.
type Exiter interface {
	Done() <-chan struct{}
	Err() error
}

// watch ends l's session as terminated if its endpoint dies while the
// session is registered: STOP event, status terminated, the sink told
// (ChangeStopped), the endpoint reaped and its port freed. A session that is
// stopped or shut down first is left to that path. The caller holds m.mu.
func (m *Manager) watch(l *live) {
	x, ok := l.ep.(Exiter)
	if !ok {
		return
	}
	m.waiters.Go(func() {
		select {
		case <-x.Done():
			m.endpointDied(l, x.Err())
		case <-l.done: // unregistered: whoever did it stops the endpoint
		}
	})
}

func (m *Manager) endpointDied(l *live, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), bgTimeout)
	defer cancel()
	m.mu.Lock()
	if m.live[l.rec.ID] != l {
		m.mu.Unlock()
		return
	}
	m.log.Error("session endpoint died; ending the session as terminated",
		"session", l.rec.ID, "port", l.rec.Port, "err", cause)
	if _, err := m.endLocked(ctx, l, StatusTerminated, "cannot end session"); err != nil {
		m.log.Error("cannot record the end of a session whose endpoint died", "session", l.rec.ID, "err", err)
	}
}
