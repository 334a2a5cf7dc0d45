package session

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Config is what a Manager needs; main fills it in.
type Config struct {
	Store      Store
	Runner     Runner
	Ports      Ports
	URLs       URLs
	ServiceKey string // session_event_context, OpenTera's service key
	Logger     *slog.Logger
	Now        func() time.Time // nil = time.Now
	// Events hears every committed change (nil = none).
	Events EventSink
	// ReadyTimeout bounds how long an Endpoint may take to become Ready
	// (0 = DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// Homes makes this Manager one node of a cluster (nil = the only node).
	Homes Homes
}

// Manager owns the session lifecycle. It is the only writer of session
// records; adapters (HTTP, Redis RPC) translate their wire formats into its
// calls.
//
// Locks (docs/architecture.md, "Concurrency rules"): mu guards the maps and
// is held only to read or swap them, never across storage, process or
// network I/O, nor while calling the sink or an endpoint. Each action takes
// its session's lock (lock.go) first and holds it across its I/O: actions
// on one session are serialised, actions on different sessions are not.
// Order: a session's lock, then mu; never the other way round.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu     sync.RWMutex // guards the fields below; readers take RLock
	live   map[int64]*live
	locks  map[int64]*sessionLock
	closed bool

	waiters sync.WaitGroup // awaitReady and watch (exit.go) goroutines
}

// live is a running session.
type live struct {
	id   int64 // rec.ID and rec.Port, which never change: read them freely
	port int

	// rec is the committed record. It is replaced, never modified, by the
	// holder of the session's lock, under mu: read it under either.
	rec    *Record
	ep     Endpoint
	home   Home            // nil without a cluster; fixed at start
	died   <-chan struct{} // ep.Done(), asked once, outside mu
	tokens atomic.Pointer[tokenTable]
	ready  atomic.Bool // the endpoint answers: invitations may go out
	onSFU  atomic.Bool // the endpoint's last MediaOnSFU: what rec should say
	// mediaWriter: a saveMedia is started and has not read onSFU yet.
	mediaWriter atomic.Bool
	done        chan struct{} // closed when the session is unregistered
}

// NewManager returns a Manager. Call Restore to bring back the sessions that
// were running when the process last stopped.
func NewManager(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: log, live: map[int64]*live{}, locks: map[int64]*sessionLock{}}
}

func (m *Manager) now() time.Time { return m.cfg.Now().UTC() }

// Running reports how many sessions run now.
func (m *Manager) Running() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.live)
}

// Restore restarts every session the store says was running, on its old port
// and with its old keys, so links handed out before a restart keep working.
func (m *Manager) Restore(ctx context.Context) error {
	if m.cfg.Homes != nil { // only the sessions no other node serves
		_, err := m.Claim(ctx)
		return err
	}
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if !rec.Running {
			continue
		}
		if err := m.restoreLocking(ctx, rec); err != nil {
			m.log.Error("cannot restore session; marking it terminated", logKeySession, rec.ID, logKeyPort, rec.Port, logKeyErr, err)
			m.terminate(ctx, rec, nil)
		}
	}
	return nil
}

func (m *Manager) restoreLocking(ctx context.Context, rec *Record) error {
	unlock, err := m.lockSession(ctx, rec.ID, nil)
	if err != nil {
		return err
	}
	defer unlock()
	return m.restoreOne(ctx, rec, nil)
}

// restoreOne starts the endpoint of running session rec on its port with
// its keys, at home h (nil without a cluster). The caller holds the
// session's lock.
func (m *Manager) restoreOne(ctx context.Context, rec *Record, h Home) error {
	if err := m.cfg.Ports.Claim(rec.Port); err != nil {
		return err
	}
	rec.Tokens = issueTokens(rec) // keeps every existing key
	l, err := m.startEndpoint(ctx, rec, h)
	if err != nil {
		m.cfg.Ports.Release(rec.Port)
		return err
	}
	if !m.register(l) {
		m.stopLive(ctx, l, rec.Port, StopShutdown)
		return nil // still running in the store: the next start restores it
	}
	m.announce(l, false)
	m.log.Info("session restored", logKeySession, rec.ID, logKeyPort, rec.Port)
	return nil
}

// terminate records that a running session could not come back.
func (m *Manager) terminate(ctx context.Context, rec *Record, h Home) {
	m.closeRecord(rec, StatusTerminated)
	if err := m.put(ctx, h, rec); err != nil {
		m.log.Error("cannot save terminated session", logKeySession, rec.ID, logKeyErr, err)
	}
}

// closeRecord ends the running part of a record: STOP event, duration,
// status, no port and no keys.
func (m *Manager) closeRecord(rec *Record, st Status) {
	now := m.now()
	if !rec.LastStart.IsZero() && now.After(rec.LastStart) {
		rec.Duration += int64(now.Sub(rec.LastStart).Round(time.Second) / time.Second)
	}
	rec.addEvent(EventStop, now, "", m.cfg.ServiceKey)
	rec.Status, rec.Running, rec.Port, rec.Tokens = st, false, 0, nil
	rec.MediaOnSFU = false // everyone has left: the next start follows the mode's rule
}

// startEndpoint starts the runner for rec (port and tokens already set).
// The caller holds the session's lock, not mu.
func (m *Manager) startEndpoint(ctx context.Context, rec *Record, h Home) (*live, error) {
	l := &live{id: rec.ID, port: rec.Port, rec: rec, home: h, done: make(chan struct{})}
	l.tokens.Store(newTokenTable(rec))
	ep, err := m.cfg.Runner.Start(ctx, RunSpec{
		SessionID:   rec.ID,
		SessionUUID: rec.UUID,
		Port:        rec.Port,
		Gate:        gate{l},
		Logger:      m.log.With(logKeySession, rec.ID, logKeyPort, rec.Port),
		Parameters:  rec.Parameters,
		TypeConfig:  rec.TypeConfig,
		MediaOnSFU:  rec.MediaOnSFU,
		Media:       mediaRecorder{m, l},
	})
	if err != nil {
		return nil, err
	}
	l.ep, l.died = ep, ep.Done()
	return l, nil
}

// register makes l the running session of its id and watches its endpoint.
// It fails when the Manager has shut down meanwhile: the caller then stops
// the endpoint itself.
func (m *Manager) register(l *live) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.live[l.id] = l
	m.watch(l)     // a child process may die on its own
	m.watchHome(l) // a cluster node may lose the session to another
	return true
}

// unregister removes l, if it is still the running session of its id, and
// kills every key at once, before peers are told. It reports whether it
// did: if not, Shutdown took l and stops its endpoint.
func (m *Manager) unregister(l *live) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[l.id] != l {
		return false
	}
	delete(m.live, l.id)
	l.tokens.Store(&tokenTable{})
	close(l.done)
	return true
}

// running returns the registered live session of id, or nil.
func (m *Manager) running(id int64) *live {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.live[id]
}

// stopLive ends an endpoint that is no longer registered, then frees its
// port and its home (another node may take the session at once).
func (m *Manager) stopLive(ctx context.Context, l *live, port int, why StopReason) {
	if err := l.ep.Stop(ctx, why); err != nil {
		m.log.Warn("session endpoint did not stop cleanly", logKeySession, l.id, logKeyErr, err)
	}
	m.cfg.Ports.Release(port)
	m.releaseHome(l.home)
}

// Shutdown stops every endpoint, telling peers to reconnect, and refuses
// further calls. Records stay "running" so the next start restores them.
// An action already past its checks finishes on its own: a start that
// registers after this point stops its endpoint the same way.
func (m *Manager) Shutdown(ctx context.Context) { m.Drain(ctx, nil) }

// Drain is Shutdown on a cluster node that leaves: once a session's
// endpoint has stopped (peers told to reconnect) and its home and port are
// released, handOver(id) asks another node to claim it at once, rather
// than after a claim period. Sessions are stopped and handed over in
// parallel; Drain returns when this node serves nothing.
func (m *Manager) Drain(ctx context.Context, handOver func(ctx context.Context, id int64)) {
	m.mu.Lock()
	m.closed = true
	all := make([]*live, 0, len(m.live))
	for _, l := range m.live {
		all = append(all, l)
		close(l.done)
	}
	m.live = map[int64]*live{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range all {
		wg.Go(func() {
			m.stopLive(ctx, l, l.port, StopShutdown)
			if handOver != nil {
				handOver(ctx, l.id)
			}
		})
	}
	wg.Wait()
	m.waiters.Wait()
}

// open fails once the Manager has shut down.
func (m *Manager) open() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return errClosed
	}
	return nil
}

// gate admits into one live session by reading its current token table.
type gate struct{ l *live }

func (g gate) Admit(_ context.Context, key, uuid string) (Identity, error) {
	t := g.l.tokens.Load()
	if t == nil {
		return Identity{}, ErrDenied
	}
	return t.admit(key, uuid)
}

// Person tells a member who they are (their name and language) and who
// their therapist is, so their page can greet them even from a link that
// carries no name (OpenTera's). Only the holder of a live key learns it.
func (g gate) Person(_ context.Context, key, uuid string) (Person, error) {
	t := g.l.tokens.Load()
	if t == nil {
		return Person{}, ErrDenied
	}
	id, err := t.admit(key, uuid)
	if err != nil {
		return Person{}, err
	}
	inv := t.invitees[id.UUID]
	return Person{Name: inv.Name, Lang: inv.Lang, Therapist: t.therapist}, nil
}

func (g gate) Valid(_ context.Context, key string) bool {
	t := g.l.tokens.Load()
	if t == nil {
		return false
	}
	_, ok := t.find(key)
	return ok
}

// resolve finds the id of the session a request names by id or uuid. A
// uuid of a session that is not running is looked up in the store, without
// any lock.
func (m *Manager) resolve(ctx context.Context, id int64, uuid string) (int64, error) {
	if id != 0 {
		return id, nil
	}
	if id, ok := m.runningByUUID(uuid); ok {
		return id, nil
	}
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range recs {
		if r.UUID == uuid {
			return r.ID, nil
		}
	}
	return 0, ErrNotFound
}

// notFound maps a store miss to the public error of the action.
func notFound(err error, text string) error {
	if errors.Is(err, ErrNotFound) {
		return &Error{Code: CodeNotFound, Text: text}
	}
	return internal("cannot read session", err)
}

var errClosed = &Error{Code: CodeUnavailable, Text: "service is shutting down"}

// runningByUUID finds the id of the running session with uuid.
func (m *Manager) runningByUUID(uuid string) (int64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, l := range m.live {
		if l.rec.UUID == uuid {
			return l.id, true
		}
	}
	return 0, false
}
