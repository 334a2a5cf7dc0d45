package session

import (
	"context"
	"errors"
	"fmt"
)

// Homes makes a Manager one node of a cluster (nil: the only node, which
// serves every session). Only a session's home serves it: the Manager
// takes the session's home before starting or restoring its endpoint,
// stamps the session's writes with the home's fencing token, and stops
// serving the session at once when the home is lost. Actions on a session
// whose home is another node are forwarded there, so each runs once.
type Homes interface {
	// Take makes this node the home of session id. It fails with an
	// error wrapping ErrElsewhere when another node is.
	Take(ctx context.Context, id int64) (Home, error)
	// Forward runs req on the home node of session id and returns its
	// reply or its error. It fails with an error wrapping ErrNoHome when
	// no node is the session's home.
	Forward(ctx context.Context, id int64, req *Request) (*Reply, error)
	// Place starts a new session (req has no id) on the node that should
	// take it (the least loaded) when that is another node, and returns
	// its reply; handled is false when it should start here.
	Place(ctx context.Context, req *Request) (reply *Reply, handled bool, err error)
}

// Home is this node's holding of one session (a lease in Redis).
type Home interface {
	// Token is the fencing token of the holding: it grows with every
	// holding of any session, so a store can refuse a late write of a
	// former home.
	Token() int64
	// Lost is closed when the holding is lost (not renewed in time, taken
	// over): the session must stop being served here at once.
	Lost() <-chan struct{}
	Err() error
	// Release gives the holding up, so another node may take it at once.
	Release(ctx context.Context) error
}

// FencedStore is a Store that refuses a write stamped with an older
// fencing token than one the record has already been written with. A
// cluster's Manager writes through it when its Store has it.
type FencedStore interface {
	PutFenced(ctx context.Context, r *Record, token int64) error
}

// Why a session cannot be served by this node.
var (
	ErrElsewhere = errors.New("session is served by another node")
	ErrNoHome    = errors.New("session has no home node")
	// ErrPortHeldByNode: the session's port is still held by another node
	// of the cluster (a Ports.Claim error). It is passing: that node
	// releases the port when it loses the session's lease, or its
	// heartbeat expires; a claim meeting it tries again later rather than
	// ending the session.
	ErrPortHeldByNode = fmt.Errorf("%w by another node", ErrPortInUse)
)

// here marks a context whose action must run on this node, never be
// forwarded: the home node's side of a forwarded action.
type hereKey struct{}

// Here returns ctx marked so that Manage runs the action on this node or
// fails, and never forwards it (a forwarded action that finds its home has
// moved again gets an error, not a loop).
func Here(ctx context.Context) context.Context { return context.WithValue(ctx, hereKey{}, true) }

func isHere(ctx context.Context) bool { v, _ := ctx.Value(hereKey{}).(bool); return v }

var errMoved = &Error{Code: CodeUnavailable, Text: "session is moving to another node, try again"}

// put writes rec, fenced by h's token when there is a home and the store
// can fence.
func (m *Manager) put(ctx context.Context, h Home, rec *Record) error {
	if h != nil {
		if fs, ok := m.cfg.Store.(FencedStore); ok {
			return fs.PutFenced(ctx, rec, h.Token())
		}
	}
	return m.cfg.Store.Put(ctx, rec)
}

// takeHome takes the home of session id (nil Home without a cluster).
func (m *Manager) takeHome(ctx context.Context, id int64) (Home, error) {
	if m.cfg.Homes == nil {
		return nil, nil
	}
	return m.cfg.Homes.Take(ctx, id)
}

// releaseHome gives h up (nothing without a cluster).
func (m *Manager) releaseHome(h Home) {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), bgTimeout)
	defer cancel()
	if err := h.Release(ctx); err != nil {
		m.log.Warn("cannot release a session's home", logKeyErr, err)
	}
}

// watchHome stops serving l at once when its home is lost: keys dead,
// peers told to reconnect (through any gateway, to the new home), port
// freed; the record is not written, since the new home owns it now. The
// caller holds mu.
func (m *Manager) watchHome(l *live) {
	if l.home == nil {
		return
	}
	m.waiters.Go(func() {
		select {
		case <-l.home.Lost():
			if !m.unregister(l) {
				return
			}
			m.log.Error("session's home lost: no longer serving it here", logKeySession, l.id, logKeyErr, l.home.Err())
			ctx, cancel := context.WithTimeout(context.Background(), bgTimeout)
			defer cancel()
			m.stopLive(ctx, l, l.port, StopShutdown)
		case <-l.done:
		}
	})
}

// elsewhere runs req on the session's home node when it is not this one.
// handled is false when the action must run here: this node is (or has
// just become) the home, or there is no cluster.
func (m *Manager) elsewhere(ctx context.Context, id int64, req *Request) (reply *Reply, handled bool, err error) {
	if m.cfg.Homes == nil || m.running(id) != nil {
		return nil, false, nil
	}
	if isHere(ctx) {
		return nil, true, errMoved
	}
	reply, err = m.cfg.Homes.Forward(ctx, id, req)
	if errors.Is(err, ErrNoHome) {
		return nil, false, nil // nobody serves it: this node may claim it
	}
	return reply, true, err
}

// Claim takes the home of every running session that has none (its home
// node is lost, or it was running when the whole cluster stopped) and
// restores it here on its port with its keys. It reports how many it
// restored. Without a cluster it does nothing. It tries only what Homes
// reports lost (LostHomes), else the store's running sessions (see
// toClaim): never the history.
func (m *Manager) Claim(ctx context.Context) (int, error) {
	if m.cfg.Homes == nil {
		return 0, nil
	}
	ids, err := m.toClaim(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if m.running(id) != nil || m.open() != nil {
			continue
		}
		ok, err := m.claimOne(ctx, id)
		if err != nil {
			m.log.Error("cannot claim session", logKeySession, id, logKeyErr, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// ClaimSession restores session id here at once if it runs nowhere (a
// draining node has just handed it over) and this node can take its home;
// it reports whether the session now runs here.
func (m *Manager) ClaimSession(ctx context.Context, id int64) (bool, error) {
	if m.cfg.Homes == nil {
		return false, nil
	}
	if err := m.open(); err != nil {
		return false, err
	}
	return m.claimOne(ctx, id)
}

// claimOne restores session id here if it runs nowhere and this node can
// take its home; ok reports whether it now runs here.
func (m *Manager) claimOne(ctx context.Context, id int64) (ok bool, err error) {
	unlock, err := m.lockSession(ctx, id, nil)
	if err != nil {
		return false, err
	}
	defer unlock()
	return m.claimLocked(ctx, id)
}

// claimLocked is claimOne for a caller holding the session's lock.
func (m *Manager) claimLocked(ctx context.Context, id int64) (bool, error) {
	if m.running(id) != nil {
		return true, nil
	}
	h, err := m.takeHome(ctx, id)
	if errors.Is(err, ErrElsewhere) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Read after taking the home: what a former home wrote last is here.
	rec, err := m.cfg.Store.Get(ctx, id)
	if err == nil && !rec.Running {
		m.releaseHome(h) // ended meanwhile
		return false, nil
	}
	if err == nil {
		err = m.put(ctx, h, rec) // raises the fence: a former home's late write is refused
	}
	if err == nil {
		err = m.restoreOne(ctx, rec, h)
	}
	if errors.Is(err, ErrPortHeldByNode) {
		// A node killed between its heartbeat and its lease renewal holds
		// its ports up to a beat longer than the lease: not a reason to end
		// the session. The next claim takes it.
		m.log.Info("claimed session's port still held by its former node: claimed again later", logKeySession, id, logKeyErr, err)
		m.releaseHome(h)
		return false, nil
	}
	if err != nil {
		m.log.Error("cannot restore claimed session; marking it terminated", logKeySession, id, logKeyErr, err)
		if rec != nil {
			m.terminate(ctx, rec, h)
		}
		m.releaseHome(h)
		return false, err
	}
	return m.running(id) != nil, nil
}
