package session

import (
	"context"
	"fmt"
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
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errClosed
	}
	if _, l, err := m.lookupStart(ctx, req); l != nil || err != nil {
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		// Already running: nothing changes, but its members are invited
		// again (OpenTera re-sent invitations when a session was restarted).
		v := m.view(l.rec, l)
		var chs []Change
		if l.ready.Load() {
			chs = append(chs, Change{Type: ChangeInvited, Session: m.view(l.rec, l)})
		}
		m.unlockEmit(chs...)
		return &Reply{Status: "started", Session: v}, nil
	}
	l, err := m.startNew(ctx, req)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	m.register(l)
	v := m.view(l.rec, l)
	m.log.Info("session started", "session", l.rec.ID, "port", l.rec.Port)
	m.unlockEmit(m.announce(l, true)...)
	return &Reply{Status: "started", Session: v}, nil
}

// startNew takes a port, writes the record and starts the endpoint of a
// session that is not running. The caller holds m.mu and registers l.
func (m *Manager) startNew(ctx context.Context, req *Request) (*live, error) {
	port, err := m.cfg.Ports.Acquire() // before creating anything: a full pool changes nothing
	if err != nil {
		return nil, &Error{Code: CodeUnavailable, Text: "No available port left", Err: err}
	}
	rec, err := m.recordToStart(ctx, req)
	if err != nil {
		m.cfg.Ports.Release(port)
		return nil, err
	}
	now := m.now()
	rec.Running, rec.Port, rec.Status, rec.LastStart, rec.Tokens = true, port, StatusInProgress, now, nil
	rec.Tokens = issueTokens(rec)
	rec.addEvent(EventStart, now, "", m.cfg.ServiceKey)
	l, err := m.startEndpoint(ctx, rec)
	if err != nil {
		m.cfg.Ports.Release(port)
		return nil, internal("Cannot create process", err)
	}
	if err := m.cfg.Store.Put(ctx, rec); err != nil {
		m.stopLive(ctx, l, port, StopEnded)
		return nil, internal("Cannot create session", err)
	}
	return l, nil
}

// lookupStart finds the session a start names; nothing for a new one.
// The caller holds m.mu.
func (m *Manager) lookupStart(ctx context.Context, req *Request) (*Record, *live, error) {
	if req.SessionID == 0 && req.SessionUUID == "" {
		return nil, nil, nil
	}
	rec, l, err := m.lookup(ctx, req.SessionID, req.SessionUUID)
	if err != nil {
		return nil, nil, notFound(err, "No matching session to start")
	}
	return rec, l, nil
}

// recordToStart creates a new record (id_session 0) or loads an existing one
// and applies the request's lists and parameters to it. The caller holds m.mu.
func (m *Manager) recordToStart(ctx context.Context, req *Request) (*Record, error) {
	if req.SessionID == 0 && req.SessionUUID == "" {
		return m.newRecord(ctx, req)
	}
	rec, _, err := m.lookupStart(ctx, req)
	if err != nil {
		return nil, err
	}
	rec = rec.clone()
	for k, list := range req.Lists {
		*rec.Members.list(k) = list
	}
	if req.Parameters != nil {
		rec.Parameters = req.Parameters
	}
	return rec, nil
}

// newRecord creates the record of a new session (status not started until
// its endpoint runs). The caller holds m.mu.
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
	if err := m.cfg.Store.Create(ctx, rec); err != nil {
		return nil, internal("Cannot create session", err)
	}
	if rec.Name == "" {
		rec.Name = defaultName("", rec.ID, rec.StartTime)
	}
	return rec, nil
}

func (m *Manager) stop(ctx context.Context, req *Request) (*Reply, error) {
	m.mu.Lock()
	rec, l, err := m.lookup(ctx, req.SessionID, req.SessionUUID)
	if err == nil && l == nil {
		err = ErrNotFound // known, but not running
	}
	if err != nil {
		m.mu.Unlock()
		return nil, notFound(err, "No matching session to stop")
	}
	v, err := m.endLocked(ctx, l, StatusCompleted, "Error stopping session - check server logs")
	if err != nil {
		return nil, err
	}
	m.log.Info("session stopped", "session", rec.ID)
	return &Reply{Status: "stopped", Session: v}, nil
}

// endLocked ends the registered session l with status st: STOP event,
// duration, record stored, keys dead, the sink told, then the endpoint
// stopped and its port freed. The caller holds m.mu; endLocked releases it.
// If the record cannot be stored, nothing changes and the error has text.
func (m *Manager) endLocked(ctx context.Context, l *live, st Status, text string) (*View, error) {
	next := l.rec.clone()
	port := next.Port
	m.closeRecord(next, st)
	if err := m.cfg.Store.Put(ctx, next); err != nil {
		m.mu.Unlock()
		return nil, internal(text, err)
	}
	m.unregister(l)
	v := m.view(next, nil)
	m.unlockEmit(Change{Type: ChangeStopped, Session: v})
	m.stopLive(ctx, l, port, StopEnded)
	return m.view(next, nil), nil
}

// running returns the live session of a request, or the public error.
// The caller holds m.mu.
func (m *Manager) running(ctx context.Context, req *Request) (*live, error) {
	if m.closed {
		return nil, errClosed
	}
	_, l, err := m.lookup(ctx, req.SessionID, req.SessionUUID)
	if err == nil && l == nil {
		err = ErrNotFound
	}
	if err != nil {
		return nil, notFound(err, "No matching session")
	}
	return l, nil
}

// commit persists next as the new state of l and swaps in its keys.
// The caller holds m.mu.
func (m *Manager) commit(ctx context.Context, l *live, next *Record, text string) error {
	next.Tokens = issueTokens(next)
	if err := m.cfg.Store.Put(ctx, next); err != nil {
		return internal(text, err)
	}
	l.rec = next
	l.tokens.Store(&tokenTable{tokens: next.Tokens, members: next.Members})
	return nil
}

func (m *Manager) invite(ctx context.Context, req *Request) (*Reply, error) {
	m.mu.Lock()
	l, err := m.running(ctx, req)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	next := l.rec.clone()
	now := m.now()
	var added []Identity
	for _, k := range Kinds {
		for _, u := range req.Lists[k] {
			if next.Members.Has(k, u) {
				continue
			}
			if len(*next.Members.list(k)) >= MaxMembers {
				m.mu.Unlock()
				return nil, errorf(CodeBadRequest, "session_%ss: at most %d members", k, MaxMembers)
			}
			*next.Members.list(k) = append(*next.Members.list(k), u)
			added = append(added, Identity{Kind: k, UUID: u})
			next.addEvent(EventJoin, now, k.label()+": "+u, m.cfg.ServiceKey)
		}
	}
	if err := m.commit(ctx, l, next, "Error updating session"); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	v := m.view(next, l)
	var chs []Change
	if l.ready.Load() { // before that, the Started change will invite everyone
		chs = append(chs, Change{Type: ChangeInvited, Session: m.view(next, l), Added: added})
	}
	m.unlockEmit(chs...)
	return &Reply{Status: "invited", Session: v}, nil
}

func (m *Manager) remove(ctx context.Context, req *Request) (*Reply, error) {
	m.mu.Lock()
	l, err := m.running(ctx, req)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	next := l.rec.clone()
	now := m.now()
	var gone []Identity
	for _, k := range Kinds {
		for _, u := range req.Lists[k] {
			if dropMember(&next.Members, k, u) {
				gone = append(gone, Identity{Kind: k, UUID: u})
				next.addEvent(EventLeave, now, k.label()+": "+u, m.cfg.ServiceKey)
			}
		}
	}
	if err := m.commit(ctx, l, next, "Error updating session"); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	v := m.view(next, l)
	m.unlockEmit(Change{Type: ChangeRemoved, Session: m.view(next, l), Removed: gone})
	for _, id := range gone {
		l.ep.Kick(id)
	}
	return &Reply{Status: "removed", Session: v}, nil
}

func dropMember(ms *Members, k Kind, uuid string) bool {
	list := ms.list(k)
	for i, u := range *list {
		if u == uuid {
			*list = append((*list)[:i:i], (*list)[i+1:]...)
			return true
		}
	}
	return false
}

func (m *Manager) inviteReply(ctx context.Context, req *Request) (*Reply, error) {
	r := req.Reply
	m.mu.Lock()
	l, err := m.running(ctx, req)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	isCreator := l.rec.Creator.UUID == r.UUID
	if !isCreator && !l.rec.Members.Has(r.Kind, r.UUID) {
		m.mu.Unlock()
		return nil, errorf(CodeBadRequest, "%s %s is not invited to this session", r.Kind, r.UUID)
	}
	if r.Code == ReplyAccepted {
		v := m.view(l.rec, l)
		m.unlockEmit(Change{Type: ChangeReplied, Session: m.view(l.rec, l), Reply: r})
		return &Reply{Status: "OK", Session: v}, nil
	}
	if isCreator {
		m.mu.Unlock()
		stopped, err := m.stop(ctx, req)
		if err != nil {
			return nil, err
		}
		return &Reply{Status: "error", ErrorText: "Creator refused to join session - session ended", Session: stopped.Session}, nil
	}
	next := l.rec.clone()
	dropMember(&next.Members, r.Kind, r.UUID)
	next.addEvent(EventJoinRefused, m.now(), fmt.Sprintf("%s %s", r.Kind.label(), r.UUID), m.cfg.ServiceKey)
	if err := m.commit(ctx, l, next, "Cannot create refused session event"); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	who := Identity{Kind: r.Kind, UUID: r.UUID}
	v := m.view(next, l)
	m.unlockEmit(Change{Type: ChangeReplied, Session: m.view(next, l), Reply: r, Removed: []Identity{who}})
	l.ep.Kick(who)
	return &Reply{Status: "OK", Session: v}, nil
}

// Get returns one session as the API shows it.
func (m *Manager) Get(ctx context.Context, id int64) (*View, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	rec, l, err := m.lookup(ctx, id, "")
	if err != nil {
		return nil, notFound(err, "No matching session")
	}
	return m.view(rec, l), nil
}

// List returns every session, or only the running ones.
func (m *Manager) List(ctx context.Context, runningOnly bool) ([]*View, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return nil, internal("cannot list sessions", err)
	}
	out := make([]*View, 0, len(recs))
	for _, rec := range recs {
		l := m.live[rec.ID]
		if runningOnly && l == nil {
			continue
		}
		if l != nil {
			rec = l.rec
		}
		out = append(out, m.view(rec, l))
	}
	return out, nil
}
