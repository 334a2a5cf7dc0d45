package session

// watch ends l's session as terminated if its endpoint dies while the
// session is registered: STOP event, status terminated, the sink told
// (ChangeStopped), the endpoint reaped and its port freed. A session that is
// stopped or shut down first is left to that path. The caller holds mu.
func (m *Manager) watch(l *live) {
	if l.died == nil {
		return // it ends only through Stop
	}
	m.waiters.Go(func() {
		select {
		case <-l.died:
			m.log.Error("session endpoint died; ending the session as terminated",
				logKeySession, l.id, logKeyPort, l.port, logKeyErr, l.ep.Err())
			m.endInBackground(l, "cannot record the end of a session whose endpoint died")
		case <-l.done: // unregistered: whoever did it stops the endpoint
		}
	})
}
