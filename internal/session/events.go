package session

import (
	"context"
	"time"
)

// EventSink hears about committed session changes, so an adapter can tell
// the invitees (OpenTera's TeraEvents on Redis). The Manager calls it after
// the change is stored, never while holding its lock, and in the order the
// changes were committed. SessionEvent must not block and must not call
// back into the Manager synchronously: queue the change and return.
type EventSink interface {
	SessionEvent(Change)
}

// ChangeType says what happened to a session.
type ChangeType int

// The changes a Manager reports.
const (
	// ChangeStarted: the session's endpoint answers; Added lists every
	// member (each gets an invitation). Sent once per start, when the
	// endpoint is ready, never before.
	ChangeStarted ChangeType = iota + 1
	// ChangeInvited: Added were invited to a ready session (none: a start
	// of the running session; every member is invited again either way).
	ChangeInvited
	// ChangeRemoved: Removed were dropped; Session no longer lists them.
	ChangeRemoved
	// ChangeReplied: an invitee answered (Reply). A refusal drops them:
	// Removed then holds them.
	ChangeReplied
	// ChangeStopped: the session ended. Session lists its last members.
	ChangeStopped
)

func (t ChangeType) String() string {
	switch t {
	case ChangeStarted:
		return "started"
	case ChangeInvited:
		return "invited"
	case ChangeRemoved:
		return "removed"
	case ChangeReplied:
		return "replied"
	case ChangeStopped:
		return "stopped"
	}
	return "unknown"
}

// Change is one committed session change.
type Change struct {
	Type    ChangeType
	Session *View // the session after the change (a copy: the sink may keep it)
	Added   []Identity
	Removed []Identity
	Reply   *InviteReply
}

// ReadyEndpoint is an Endpoint that starts answering some time after
// Runner.Start returned (a child process that must boot first). The Manager
// sends no invitation before Ready is closed. An endpoint that is not a
// ReadyEndpoint is ready as soon as Runner.Start returns.
type ReadyEndpoint interface {
	Endpoint
	// Ready is closed once the endpoint answers requests.
	Ready() <-chan struct{}
}

// DefaultReadyTimeout bounds how long a ReadyEndpoint may take to answer
// before its session is ended as terminated.
const DefaultReadyTimeout = 30 * time.Second

// bgTimeout bounds the store and endpoint work of background transitions
// (readiness timeouts), which have no caller context.
const bgTimeout = 30 * time.Second

// memberIDs lists every member of rec, in OpenTera's order.
func memberIDs(ms Members) []Identity {
	var out []Identity
	for _, k := range Kinds {
		for _, u := range *ms.list(k) {
			out = append(out, Identity{Kind: k, UUID: u})
		}
	}
	return out
}

// unlockEmit releases m.mu (held for writing) and hands the changes to the
// sink. emitMu is taken before m.mu is released, so the sink sees changes
// in commit order, yet it never runs under m.mu.
func (m *Manager) unlockEmit(chs ...Change) {
	if m.cfg.Events == nil || len(chs) == 0 {
		m.mu.Unlock()
		return
	}
	m.emitMu.Lock()
	m.mu.Unlock()
	defer m.emitMu.Unlock()
	for _, c := range chs {
		m.cfg.Events.SessionEvent(c)
	}
}

// announce decides how l's readiness is learnt once it is registered: an
// in-process endpoint is ready now (the Started change is returned, for the
// caller to emit); a ReadyEndpoint is awaited in the background. announce
// false (restored sessions) only marks readiness: their invitations went
// out before the restart. The caller holds m.mu.
func (m *Manager) announce(l *live, announce bool) []Change {
	re, ok := l.ep.(ReadyEndpoint)
	if !ok {
		l.ready.Store(true)
		if !announce {
			return nil
		}
		return []Change{{Type: ChangeStarted, Session: m.view(l.rec, l), Added: memberIDs(l.rec.Members)}}
	}
	ready := re.Ready()
	m.waiters.Go(func() { m.awaitReady(l, ready, announce) })
	return nil
}

// awaitReady waits for a ReadyEndpoint. When it answers, the session is
// marked ready and (if announce) its invitations go out; if it does not
// answer within ReadyTimeout, the session is ended as terminated, so
// invitations are never sent before the endpoint works nor left pending
// for ever.
func (m *Manager) awaitReady(l *live, ready <-chan struct{}, announce bool) {
	timer := time.NewTimer(m.readyTimeout())
	defer timer.Stop()
	select {
	case <-ready:
		m.markReady(l, announce)
	case <-l.done:
	case <-timer.C:
		m.log.Error("session endpoint did not become ready; ending the session", "session", l.rec.ID, "timeout", m.readyTimeout())
		ctx, cancel := context.WithTimeout(context.Background(), bgTimeout)
		defer cancel()
		m.mu.Lock()
		if m.live[l.rec.ID] != l {
			m.mu.Unlock()
			return
		}
		if _, err := m.endLocked(ctx, l, StatusTerminated, "cannot end session"); err != nil {
			m.log.Error("cannot end unready session", "session", l.rec.ID, "err", err)
		}
	}
}

func (m *Manager) markReady(l *live, announce bool) {
	m.mu.Lock()
	if m.live[l.rec.ID] != l {
		m.mu.Unlock()
		return
	}
	l.ready.Store(true)
	m.log.Info("session endpoint ready", "session", l.rec.ID)
	if !announce {
		m.mu.Unlock()
		return
	}
	m.unlockEmit(Change{Type: ChangeStarted, Session: m.view(l.rec, l), Added: memberIDs(l.rec.Members)})
}

func (m *Manager) readyTimeout() time.Duration {
	if m.cfg.ReadyTimeout > 0 {
		return m.cfg.ReadyTimeout
	}
	return DefaultReadyTimeout
}
