package session

import (
	"context"
	"time"
)

// EventSink hears about committed session changes, so an adapter can tell
// the invitees (OpenTera's TeraEvents on Redis). The Manager calls it after
// the change is stored, never holding Manager.mu, but holding the session's
// lock: the changes of one session arrive in the order they were committed
// (those of different sessions may interleave). SessionEvent must not block
// and must not call back into the Manager synchronously: queue the change
// and return.
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

// DefaultReadyTimeout bounds how long an Endpoint may take to become Ready
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

// emit hands committed changes to the sink. The caller holds the
// session's lock (so one session's changes keep their order), not mu.
func (m *Manager) emit(chs ...Change) {
	if m.cfg.Events == nil {
		return
	}
	for _, c := range chs {
		m.cfg.Events.SessionEvent(c)
	}
}

// announce learns l's readiness once it is registered: an endpoint that is
// ready already is marked so and its invitations (if announce) go out now;
// otherwise it is awaited in the background. announce false (restored
// sessions) only marks readiness: their invitations went out before the
// restart. The caller holds the session's lock.
func (m *Manager) announce(l *live, announce bool) {
	ready := l.ep.Ready()
	select {
	case <-ready:
		l.ready.Store(true)
		if announce {
			m.emit(m.started(l))
		}
	default:
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.closed { // Shutdown waits for waiters: none may start after it
			m.waiters.Go(func() { m.awaitReady(l, ready, announce) })
		}
	}
}

// started is the change that sends l's invitations.
func (m *Manager) started(l *live) Change {
	return Change{Type: ChangeStarted, Session: m.view(l.rec, l, m.peers(l)), Added: memberIDs(l.rec.Members)}
}

// awaitReady waits for an endpoint to become ready. When it answers, the
// session is marked ready and (if announce) its invitations go out; if it
// does not answer within ReadyTimeout, the session is ended as terminated,
// so invitations are never sent before the endpoint works nor left pending
// for ever.
func (m *Manager) awaitReady(l *live, ready <-chan struct{}, announce bool) {
	timer := time.NewTimer(m.readyTimeout())
	defer timer.Stop()
	select {
	case <-ready:
		m.markReady(l, announce)
	case <-l.done:
	case <-timer.C:
		m.log.Error("session endpoint did not become ready; ending the session", logKeySession, l.id, logKeyTimeout, m.readyTimeout())
		m.endInBackground(l, "cannot end unready session")
	}
}

func (m *Manager) markReady(l *live, announce bool) {
	ctx, cancel := context.WithTimeout(context.Background(), bgTimeout)
	defer cancel()
	unlock, err := m.lockSession(ctx, l.id, l.done)
	if err != nil {
		return // unregistered meanwhile, or stuck: nothing to announce
	}
	defer unlock()
	if m.running(l.id) != l {
		return
	}
	l.ready.Store(true)
	m.log.Info("session endpoint ready", logKeySession, l.id)
	if announce {
		m.emit(m.started(l))
	}
}

// endInBackground ends l as terminated, for the transitions that have no
// caller (an endpoint that died or never became ready), unless l was
// unregistered meanwhile.
func (m *Manager) endInBackground(l *live, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), bgTimeout)
	defer cancel()
	m.whileRunning(ctx, l, func(ctx context.Context) {
		if _, err := m.end(ctx, l, StatusTerminated, "cannot end session"); err != nil {
			m.log.Error(what, logKeySession, l.id, logKeyErr, err)
		}
	})
}

// whileRunning runs fn, a background transition of l, holding l's session
// lock, if l is still the running session of its id once the lock is
// taken; it gives up when l ends meanwhile or ctx does.
func (m *Manager) whileRunning(ctx context.Context, l *live, fn func(ctx context.Context)) {
	unlock, err := m.lockSession(ctx, l.id, l.done)
	if err != nil {
		return
	}
	defer unlock()
	if m.running(l.id) != l {
		return
	}
	fn(ctx)
}

func (m *Manager) readyTimeout() time.Duration {
	if m.cfg.ReadyTimeout > 0 {
		return m.cfg.ReadyTimeout
	}
	return DefaultReadyTimeout
}
