package session

import (
	"context"
	"time"
)

// DefaultPurgeEvery is how often RunPurger looks for names to purge.
const DefaultPurgeEvery = time.Hour

// PurgePersonalData forgets the names (docs/security.md, "Personal data")
// of every session stopped at least retention ago, and
// reports how many it purged. Each record is rewritten under its session's
// lock, so a purge never races a start of the same session; a session that
// was started again meanwhile is left alone.
func (m *Manager) PurgePersonalData(ctx context.Context, retention time.Duration) (int, error) {
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return 0, internal("cannot list sessions", err)
	}
	cutoff := m.now().Add(-retention)
	n := 0
	for _, rec := range recs {
		if !due(rec, cutoff) {
			continue
		}
		ok, err := m.forget(ctx, rec.ID, func(r *Record) bool { return due(r, cutoff) })
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	if n > 0 {
		m.log.Info("personal data of stopped sessions purged", "sessions", n, "retention", retention)
	}
	return n, nil
}

// due: rec is stopped, still holds names and stopped before cutoff.
func due(rec *Record, cutoff time.Time) bool {
	if rec.Running || rec.Forgotten {
		return false
	}
	at := stoppedAt(rec)
	return !at.IsZero() && !at.After(cutoff)
}

// Forget purges the names of one stopped session now, on request (a
// patient's right to erasure). A running session must be stopped first.
func (m *Manager) Forget(ctx context.Context, id int64) (*View, error) {
	if err := m.open(); err != nil {
		return nil, err
	}
	if _, err := m.forget(ctx, id, func(r *Record) bool { return !r.Running }); err != nil {
		return nil, err
	}
	if m.running(id) != nil {
		return nil, errorf(CodeBadRequest, "session %d is running: stop it before deleting its names", id)
	}
	return m.Get(ctx, id)
}

// forget rewrites the record of id without its names if when(record)
// holds, under the session's lock and only while the session does not run.
func (m *Manager) forget(ctx context.Context, id int64, when func(*Record) bool) (bool, error) {
	unlock, err := m.lockSession(ctx, id, nil)
	if err != nil {
		return false, err
	}
	defer unlock()
	if m.running(id) != nil {
		return false, nil
	}
	rec, err := m.cfg.Store.Get(ctx, id)
	if err != nil {
		return false, notFound(err, "No matching session")
	}
	if rec.Running || !when(rec) {
		return false, nil
	}
	forgetPersonalData(rec)
	if err := m.cfg.Store.Put(ctx, rec); err != nil {
		return false, internal("cannot delete personal data", err)
	}
	return true, nil
}

// RunPurger purges, every `every` (DefaultPurgeEvery if 0) and once at
// once, the names of sessions stopped more than retention ago, until ctx
// ends. The caller owns it: run it in a goroutine it waits for.
func (m *Manager) RunPurger(ctx context.Context, retention, every time.Duration) {
	if every <= 0 {
		every = DefaultPurgeEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := m.PurgePersonalData(ctx, retention); err != nil && ctx.Err() == nil {
			m.log.Error("cannot purge personal data", logKeyErr, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
