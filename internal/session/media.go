package session

import "context"

// mediaRecorder is a live session's [MediaRecorder].
type mediaRecorder struct {
	m *Manager
	l *live
}

// MediaOnSFU notes what the record should say and writes it in the
// background: the endpoint calls this from a peer's goroutine, which must
// not wait for the store. Each write reads the latest wish under the
// session's lock, so the record ends as the last call asked whatever the
// order the writers run in.
func (r mediaRecorder) MediaOnSFU(on bool) {
	r.l.onSFU.Store(on)
	r.m.waiters.Go(func() { r.m.saveMedia(r.l) })
}

// saveMedia writes l's media path into its record if it changed. It gives
// up when the session ends meanwhile (closeRecord clears the flag) or has
// been taken by another node (the put is fenced).
func (m *Manager) saveMedia(l *live) {
	m.whileRunning(l, func(ctx context.Context) {
		m.mu.RLock()
		rec := l.rec
		m.mu.RUnlock()
		want := l.onSFU.Load()
		if rec.MediaOnSFU == want {
			return
		}
		next := rec.clone()
		next.MediaOnSFU = want
		if err := m.put(ctx, l.home, next); err != nil {
			m.log.Warn("cannot record the session's media path", logKeySession, l.id, logKeyErr, err)
			return
		}
		m.mu.Lock()
		l.rec = next
		m.mu.Unlock()
		m.log.Info("session media path recorded", logKeySession, l.id, logKeyOnSFU, want)
	})
}
