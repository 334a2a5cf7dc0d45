package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Reply is the session_manage reply object of OpenTera: status is
// started, stopped, invited, removed, OK or error.
type Reply struct {
	Status    string `json:"status"`
	ErrorText string `json:"error_text,omitempty"`
	Session   *View  `json:"session,omitempty"`
}

// Manage runs one validated session_manage request. Failures come back as
// *Error; a few outcomes that OpenTera reports as status "error" while the
// action took place (the creator refused: the session was stopped) come back
// as a Reply.
func (m *Manager) Manage(ctx context.Context, req *Request) (*Reply, error) {
	switch req.Action {
	case ActionStart:
		return m.start(ctx, req)
	case ActionStop:
		return m.stop(ctx, req)
	case ActionInvite:
		return m.invite(ctx, req)
	case ActionRemove:
		return m.remove(ctx, req)
	case ActionInviteReply:
		return m.inviteReply(ctx, req)
	}
	return nil, errorf(CodeBadRequest, "unknown action %q", req.Action)
}

func (m *Manager) start(ctx context.Context, req *Request) (*Reply, error) {
	if err := m.open(); err != nil {
		return nil, err
	}
	if req.SessionID == 0 && req.SessionUUID == "" {
		if m.cfg.Homes != nil && !isHere(ctx) {
			if reply, handled, err := m.cfg.Homes.Place(ctx, req); handled {
				return reply, err
			}
		}
		return m.startNew(ctx, req)
	}
	id, err := m.resolve(ctx, req.SessionID, req.SessionUUID)
	if err != nil {
		return nil, notFound(err, "No matching session to start")
	}
	if reply, handled, err := m.elsewhere(ctx, id, req); handled {
		return reply, err
	}
	unlock, err := m.lockSession(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if m.cfg.Homes != nil { // a running session without a home comes back here first
		if _, err := m.claimLocked(ctx, id); err != nil {
			return nil, internal("Cannot start session", err)
		}
	}
	if l := m.running(id); l != nil {
		return m.restartRunning(l), nil
	}
	h, err := m.takeHome(ctx, id)
	if err != nil {
		return nil, homeErr(err)
	}
	port, err := m.acquirePort()
	if err != nil {
		m.releaseHome(h)
		return nil, err
	}
	rec, err := m.recordToStart(ctx, id, req)
	if err != nil {
		m.cfg.Ports.Release(port)
		m.releaseHome(h)
		return nil, err
	}
	return m.launch(ctx, rec, port, h)
}

// homeErr is the public face of a failure to take a session's home.
func homeErr(err error) error {
	if errors.Is(err, ErrElsewhere) {
		return &Error{Code: CodeUnavailable, Text: "session is starting on another node, try again", Err: err}
	}
	return internal("Cannot start session", err)
}

// startNew creates and starts a new session. The port comes first: a full
// pool changes nothing, not even the store.
func (m *Manager) startNew(ctx context.Context, req *Request) (*Reply, error) {
	port, err := m.acquirePort()
	if err != nil {
		return nil, err
	}
	rec, err := m.newRecord(ctx, req)
	if err != nil {
		m.cfg.Ports.Release(port)
		return nil, err
	}
	unlock, err := m.lockSession(ctx, rec.ID, nil)
	if err != nil {
		m.cfg.Ports.Release(port)
		return nil, err
	}
	defer unlock()
	if l := m.running(rec.ID); l != nil { // started by id before we took its lock
		m.cfg.Ports.Release(port)
		return m.restartRunning(l), nil
	}
	h, err := m.takeHome(ctx, rec.ID)
	if err != nil {
		m.cfg.Ports.Release(port)
		return nil, homeErr(err)
	}
	return m.launch(ctx, rec, port, h)
}

func (m *Manager) acquirePort() (int, error) {
	port, err := m.cfg.Ports.Acquire()
	if err != nil {
		return 0, &Error{Code: CodeUnavailable, Text: "No available port left", Err: err}
	}
	return port, nil
}

// restartRunning answers a start of a running session: nothing changes,
// but its members are invited again (OpenTera re-sent invitations when a
// session was restarted). The caller holds the session's lock.
func (m *Manager) restartRunning(l *live) *Reply {
	peers := m.peers(l)
	if l.ready.Load() {
		m.emit(Change{Type: ChangeInvited, Session: m.view(l.rec, l, peers)})
	}
	return &Reply{Status: "started", Session: m.view(l.rec, l, peers)}
}

// launch starts the endpoint of a session that is not running on port,
// writes its record, then registers it; on failure it releases port. The
// caller holds the session's lock; every step of I/O runs without mu.
func (m *Manager) launch(ctx context.Context, rec *Record, port int, h Home) (*Reply, error) {
	now := m.now()
	rec.Running, rec.Port, rec.Status, rec.LastStart, rec.Tokens = true, port, StatusInProgress, now, nil
	rec.Tokens = issueTokens(rec)
	rec.addEvent(EventStart, now, "", m.cfg.ServiceKey)
	l, err := m.startEndpoint(ctx, rec, h)
	if err != nil {
		m.cfg.Ports.Release(port)
		m.releaseHome(h)
		return nil, internal("Cannot create process", err)
	}
	if err := m.put(ctx, h, rec); err != nil {
		m.stopLive(ctx, l, port, StopEnded)
		return nil, internal("Cannot create session", err)
	}
	if !m.register(l) {
		// Shut down meanwhile: the session stops like every other running
		// one (recorded as running, restored at the next start).
		m.stopLive(ctx, l, port, StopShutdown)
		return &Reply{Status: "started", Session: m.view(rec, nil, nil)}, nil
	}
	m.log.Info("session started", logKeySession, rec.ID, logKeyPort, port)
	m.announce(l, true)
	return &Reply{Status: "started", Session: m.view(rec, l, m.peers(l))}, nil
}

// recordToStart loads an existing record and applies the request's lists
// and parameters to it. The caller holds the session's lock.
func (m *Manager) recordToStart(ctx context.Context, id int64, req *Request) (*Record, error) {
	rec, err := m.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "No matching session to start")
	}
	for k, list := range req.Lists {
		*rec.Members.list(k) = list
	}
	if req.Parameters != nil {
		rec.Parameters = req.Parameters
	}
	if req.Creator.Name != "" && req.Creator.UUID == rec.Creator.UUID {
		rec.Creator.Name = req.Creator.Name
	}
	rec.Forgotten = false
	mergeInvitees(rec, req.Invitees)
	return rec, nil
}

// newRecord creates the record of a new session (status not started until
// its endpoint runs).
func (m *Manager) newRecord(ctx context.Context, req *Request) (*Record, error) {
	now := m.now()
	rec := &Record{
		UUID: newUUID(), Name: req.Name,
		TypeID: req.TypeID, ServiceID: req.ServiceID, Creator: req.Creator,
		StartTime: now, Status: StatusNotStarted, Parameters: req.Parameters,
		Members: Members{Users: []string{}, Participants: []string{}, Devices: []string{}},
	}
	for k, list := range req.Lists {
		*rec.Members.list(k) = list
	}
	mergeInvitees(rec, req.Invitees)
	if err := m.cfg.Store.Create(ctx, rec); err != nil {
		return nil, internal("Cannot create session", err)
	}
	if rec.Name == "" {
		rec.Name = defaultTitle(rec)
	}
	return rec, nil
}

// onRunning runs fn on the running session req names, holding that
// session's lock. notRunning is the text of the error when it does not run.
func (m *Manager) onRunning(ctx context.Context, req *Request, notRunning string, fn func(*live) (*Reply, error)) (*Reply, error) {
	if err := m.open(); err != nil {
		return nil, err
	}
	id, err := m.resolve(ctx, req.SessionID, req.SessionUUID)
	if err != nil {
		return nil, notFound(err, notRunning)
	}
	if reply, handled, err := m.elsewhere(ctx, id, req); handled {
		return reply, err
	}
	unlock, err := m.lockSession(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if m.cfg.Homes != nil { // its home is lost: claim it, then act
		if _, err := m.claimLocked(ctx, id); err != nil {
			return nil, internal(notRunning, err)
		}
	}
	l := m.running(id)
	if l == nil { // known, but not running
		return nil, notFound(ErrNotFound, notRunning)
	}
	return fn(l)
}

func (m *Manager) stop(ctx context.Context, req *Request) (*Reply, error) {
	return m.onRunning(ctx, req, "No matching session to stop", func(l *live) (*Reply, error) {
		v, err := m.end(ctx, l, StatusCompleted, "Error stopping session - check server logs")
		if err != nil {
			return nil, err
		}
		m.log.Info("session stopped", logKeySession, l.id)
		return &Reply{Status: "stopped", Session: v}, nil
	})
}

// end ends the running session l with status st: STOP event, duration,
// record stored, keys dead, the sink told, then the endpoint stopped and
// its port freed. The caller holds the session's lock. If the record
// cannot be stored, nothing changes and the error has text.
func (m *Manager) end(ctx context.Context, l *live, st Status, text string) (*View, error) {
	next := l.rec.clone()
	m.closeRecord(next, st)
	if err := m.put(ctx, l.home, next); err != nil {
		return nil, internal(text, err)
	}
	ours := m.unregister(l) // false: Shutdown took it and stops it
	m.emit(Change{Type: ChangeStopped, Session: m.view(next, nil, nil)})
	if ours {
		m.stopLive(ctx, l, l.port, StopEnded)
	}
	return m.view(next, nil, nil), nil
}

// commit persists next as the new state of l and swaps in its keys. The
// caller holds the session's lock; mu is taken only for the swap.
func (m *Manager) commit(ctx context.Context, l *live, next *Record, text string) error {
	next.Tokens = issueTokens(next)
	if err := m.put(ctx, l.home, next); err != nil {
		return internal(text, err)
	}
	m.mu.Lock()
	l.rec = next
	m.mu.Unlock()
	l.tokens.Store(newTokenTable(next))
	return nil
}

func (m *Manager) invite(ctx context.Context, req *Request) (*Reply, error) {
	return m.onRunning(ctx, req, "No matching session", func(l *live) (*Reply, error) {
		next, added, err := m.editMembers(l, req.Lists, EventJoin, addMember)
		if err != nil {
			return nil, err
		}
		mergeInvitees(next, req.Invitees)
		var chs []Change
		if l.ready.Load() { // before that, the Started change will invite everyone
			chs = append(chs, Change{Type: ChangeInvited, Added: added})
		}
		return m.commitAndTell(ctx, l, next, "invited", chs...)
	})
}

func (m *Manager) remove(ctx context.Context, req *Request) (*Reply, error) {
	return m.onRunning(ctx, req, "No matching session", func(l *live) (*Reply, error) {
		next, gone, err := m.editMembers(l, req.Lists, EventLeave, dropMember)
		if err != nil {
			return nil, err
		}
		pruneInvitees(next) // a removed invitee's name goes with them
		r, err := m.commitAndTell(ctx, l, next, "removed", Change{Type: ChangeRemoved, Removed: gone})
		if err != nil {
			return nil, err
		}
		for _, id := range gone {
			l.ep.Kick(id)
		}
		return r, nil
	})
}

// editMembers applies op to every uuid of lists, kind by kind in
// OpenTera's order, on a copy of l's record, with an event of type t for
// each member op changed.
func (m *Manager) editMembers(l *live, lists map[Kind][]string, t EventType, op func(*Members, Kind, string) (bool, error)) (*Record, []Identity, error) {
	next := l.rec.clone()
	now := m.now()
	var changed []Identity
	for _, k := range Kinds {
		for _, u := range lists[k] {
			ok, err := op(&next.Members, k, u)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				changed = append(changed, Identity{Kind: k, UUID: u})
				next.addEvent(t, now, k.label()+": "+u, m.cfg.ServiceKey)
			}
		}
	}
	return next, changed, nil
}

// commitAndTell commits next, then hands the changes, each completed with
// the session after the change, to the sink, and replies status.
func (m *Manager) commitAndTell(ctx context.Context, l *live, next *Record, status string, chs ...Change) (*Reply, error) {
	if err := m.commit(ctx, l, next, "Error updating session"); err != nil {
		return nil, err
	}
	peers := m.peers(l)
	for i := range chs {
		chs[i].Session = m.view(next, l, peers)
	}
	m.emit(chs...)
	return &Reply{Status: status, Session: m.view(next, l, peers)}, nil
}

func addMember(ms *Members, k Kind, uuid string) (bool, error) {
	if ms.Has(k, uuid) {
		return false, nil
	}
	if len(*ms.list(k)) >= MaxMembers {
		return false, errorf(CodeBadRequest, "session_%ss: at most %d members", k, MaxMembers)
	}
	*ms.list(k) = append(*ms.list(k), uuid)
	return true, nil
}

func dropMember(ms *Members, k Kind, uuid string) (bool, error) {
	list := ms.list(k)
	for i, u := range *list {
		if u == uuid {
			*list = append((*list)[:i:i], (*list)[i+1:]...)
			return true, nil
		}
	}
	return false, nil
}

func (m *Manager) inviteReply(ctx context.Context, req *Request) (*Reply, error) {
	r := req.Reply
	return m.onRunning(ctx, req, "No matching session", func(l *live) (*Reply, error) {
		isCreator := l.rec.Creator.answeredBy(r, req.Creator)
		if !isCreator && !l.rec.Members.Has(r.Kind, r.UUID) {
			return nil, errorf(CodeBadRequest, "%s %s is not invited to this session", r.Kind, r.UUID)
		}
		if isCreator && l.rec.Creator.UUID == "" && r.Code == ReplyAccepted {
			// Learnt from the answer: presence (a creator who disconnects
			// ends the session) needs the uuid.
			next := l.rec.clone()
			next.Creator.UUID, next.Creator.Kind = r.UUID, r.Kind
			if err := m.commit(ctx, l, next, "Error updating session"); err != nil {
				return nil, err
			}
		}
		if r.Code == ReplyAccepted {
			peers := m.peers(l)
			m.emit(Change{Type: ChangeReplied, Session: m.view(l.rec, l, peers), Reply: r})
			return &Reply{Status: "OK", Session: m.view(l.rec, l, peers)}, nil
		}
		if isCreator {
			v, err := m.end(ctx, l, StatusCompleted, "Error stopping session - check server logs")
			if err != nil {
				return nil, err
			}
			m.log.Info("session stopped: its creator refused to join", logKeySession, l.id)
			return &Reply{Status: "error", ErrorText: "Creator refused to join session - session ended", Session: v}, nil
		}
		next := l.rec.clone()
		dropMember(&next.Members, r.Kind, r.UUID)
		pruneInvitees(next)
		next.addEvent(EventJoinRefused, m.now(), fmt.Sprintf("%s %s", r.Kind.label(), r.UUID), m.cfg.ServiceKey)
		if err := m.commit(ctx, l, next, "Cannot create refused session event"); err != nil {
			return nil, err
		}
		who := Identity{Kind: r.Kind, UUID: r.UUID}
		peers := m.peers(l)
		m.emit(Change{Type: ChangeReplied, Session: m.view(next, l, peers), Reply: r, Removed: []Identity{who}})
		l.ep.Kick(who)
		return &Reply{Status: "OK", Session: m.view(next, l, peers)}, nil
	})
}

// Get returns one session as the API shows it. It waits for no action.
func (m *Manager) Get(ctx context.Context, id int64) (*View, error) {
	if l := m.running(id); l != nil {
		m.mu.RLock()
		rec := l.rec
		m.mu.RUnlock()
		return m.view(rec, l, m.peers(l)), nil
	}
	rec, err := m.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "No matching session")
	}
	return m.view(rec, nil, nil), nil
}

// List returns every session, or only the running ones. It waits for no
// action; the endpoints are asked for their peers all at once.
func (m *Manager) List(ctx context.Context, runningOnly bool) ([]*View, error) {
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return nil, internal("cannot list sessions", err)
	}
	lives := make([]*live, len(recs))
	m.mu.RLock()
	for i, rec := range recs {
		if l := m.live[rec.ID]; l != nil {
			lives[i], recs[i] = l, l.rec
		}
	}
	m.mu.RUnlock()
	peers := make([][]Peer, len(recs))
	var wg sync.WaitGroup
	for i, l := range lives {
		if l != nil {
			wg.Go(func() { peers[i] = m.peers(l) })
		}
	}
	wg.Wait()
	out := make([]*View, 0, len(recs))
	for i, rec := range recs {
		if runningOnly && lives[i] == nil {
			continue
		}
		out = append(out, m.view(rec, lives[i], peers[i]))
	}
	return out, nil
}
