package session

import (
	"context"
	"sync"
)

// mediaRecorder is a live session's [MediaRecorder].
type mediaRecorder struct {
	m *Manager
	l *live
}

// MediaOnSFU notes what the record should say and writes it in the
// background: the endpoint calls this from a peer's goroutine, which must
// not wait for the store. One writer at a time: it reads the latest wish
// once it holds the session's lock, so the record ends as the last call
// asked, and a burst of calls (pages coming and going while the store is
// slow) starts one write at a time, not one per call.
func (r mediaRecorder) MediaOnSFU(on bool) {
	r.l.onSFU.Store(on)
	if r.l.mediaWriter.CompareAndSwap(false, true) {
		r.m.waiters.Go(func() { r.m.saveMedia(r.l) })
	}
}

// saveMedia writes l's media path into its record if it changed. It gives
// up when the session ends meanwhile, even in the middle of the write (a
// node shutting down, or cut from its store, must not wait for it;
// closeRecord clears the flag of a session that stops), and when another
// node has taken the session (the put is fenced).
func (m *Manager) saveMedia(l *live) {
	ctx, cancel := context.WithTimeout(context.Background(), bgTimeout)
	defer cancel()
	ended := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-l.done:
			cancel()
		case <-ended:
		}
	})
	defer wg.Wait()
	defer close(ended)
	// Given up before reading the wish (lock not had in time): the next call writes again.
	// Once the wish is read, the flag belongs to the next writer a later call may have started:
	// clearing it again here would let a third one start beside that one.
	read := false
	defer func() {
		if !read {
			l.mediaWriter.Store(false)
		}
	}()
	m.whileRunning(ctx, l, func(ctx context.Context) {
		read = true
		l.mediaWriter.Store(false) // a call from now on starts another write
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
