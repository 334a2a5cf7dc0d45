package session

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
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
	// ReadyTimeout bounds how long a ReadyEndpoint may take to answer
	// (0 = DefaultReadyTimeout).
	ReadyTimeout time.Duration
}

// Manager owns the session lifecycle. It is the only writer of session
// records; adapters (HTTP, Redis RPC) translate their wire formats into its
// calls.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu     sync.RWMutex // guards the fields below; never held while talking to peers
	live   map[int64]*live
	byPort map[int]*live
	closed bool

	emitMu  sync.Mutex     // orders calls to cfg.Events; taken before mu is released
	waiters sync.WaitGroup // awaitReady and watch (exit.go) goroutines
}

// live is a running session.
type live struct {
	rec    *Record
	ep     Endpoint
	tokens atomic.Pointer[tokenTable]
	ready  atomic.Bool   // the endpoint answers: invitations may go out
	done   chan struct{} // closed when the session is unregistered
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
	return &Manager{cfg: cfg, log: log, live: map[int64]*live{}, byPort: map[int]*live{}}
}

func (m *Manager) now() time.Time { return m.cfg.Now().UTC() }

// Handler returns the in-process handler of the session on port, for the
// gateway. ok is false when no session runs there.
func (m *Manager) Handler(port int) (h http.Handler, ok bool) {
	m.mu.RLock()
	l := m.byPort[port]
	m.mu.RUnlock()
	if l == nil {
		return nil, false
	}
	return l.ep.Handler(), true
}

// Running reports how many sessions run now.
func (m *Manager) Running() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.live)
}

// Restore restarts every session the store says was running, on its old port
// and with its old keys, so links handed out before a restart keep working.
func (m *Manager) Restore(ctx context.Context) error {
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range recs {
		if !rec.Running {
			continue
		}
		if err := m.restoreOne(ctx, rec); err != nil {
			m.log.Error("cannot restore session; marking it terminated", "session", rec.ID, "port", rec.Port, "err", err)
			m.terminate(ctx, rec)
		}
	}
	return nil
}

func (m *Manager) restoreOne(ctx context.Context, rec *Record) error {
	if err := m.cfg.Ports.Claim(rec.Port); err != nil {
		return err
	}
	rec.Tokens = issueTokens(rec) // keeps every existing key
	l, err := m.startEndpoint(ctx, rec)
	if err != nil {
		m.cfg.Ports.Release(rec.Port)
		return err
	}
	m.register(l)
	m.announce(l, false)
	m.log.Info("session restored", "session", rec.ID, "port", rec.Port)
	return nil
}

// terminate records that a running session could not come back.
func (m *Manager) terminate(ctx context.Context, rec *Record) {
	m.closeRecord(rec, StatusTerminated)
	if err := m.cfg.Store.Put(ctx, rec); err != nil {
		m.log.Error("cannot save terminated session", "session", rec.ID, "err", err)
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
}

// startEndpoint starts the runner for rec (port and tokens already set).
func (m *Manager) startEndpoint(ctx context.Context, rec *Record) (*live, error) {
	l := &live{rec: rec, done: make(chan struct{})}
	l.tokens.Store(&tokenTable{tokens: rec.Tokens, members: rec.Members})
	ep, err := m.cfg.Runner.Start(ctx, RunSpec{
		SessionID:   rec.ID,
		SessionUUID: rec.UUID,
		Port:        rec.Port,
		Gate:        gate{l},
		Logger:      m.log.With("session", rec.ID, "port", rec.Port),
	})
	if err != nil {
		return nil, err
	}
	l.ep = ep
	return l, nil
}

func (m *Manager) register(l *live) {
	m.live[l.rec.ID] = l
	m.byPort[l.rec.Port] = l
	m.watch(l) // a child process may die on its own
}

func (m *Manager) unregister(l *live) {
	delete(m.live, l.rec.ID)
	delete(m.byPort, l.rec.Port)
	l.tokens.Store(&tokenTable{}) // every key dies now, before peers are told
	close(l.done)
}

// stopLive ends an endpoint that is no longer registered, then frees its port.
func (m *Manager) stopLive(ctx context.Context, l *live, port int, why StopReason) {
	if err := l.ep.Stop(ctx, why); err != nil {
		m.log.Warn("session endpoint did not stop cleanly", "session", l.rec.ID, "err", err)
	}
	m.cfg.Ports.Release(port)
}

// Shutdown stops every endpoint, telling peers to reconnect, and refuses
// further calls. Records stay "running" so the next start restores them.
func (m *Manager) Shutdown(ctx context.Context) {
	m.mu.Lock()
	m.closed = true
	all := make([]*live, 0, len(m.live))
	for _, l := range m.live {
		all = append(all, l)
		close(l.done)
	}
	m.live, m.byPort = map[int64]*live{}, map[int]*live{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range all {
		wg.Go(func() { m.stopLive(ctx, l, l.rec.Port, StopShutdown) })
	}
	wg.Wait()
	m.waiters.Wait()
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

func (g gate) Valid(_ context.Context, key string) bool {
	t := g.l.tokens.Load()
	if t == nil {
		return false
	}
	_, ok := t.find(key)
	return ok
}

// lookup finds a session record by id or uuid: the live one if running.
// The caller holds m.mu.
func (m *Manager) lookup(ctx context.Context, id int64, uuid string) (*Record, *live, error) {
	if id != 0 {
		if l := m.live[id]; l != nil {
			return l.rec, l, nil
		}
		rec, err := m.cfg.Store.Get(ctx, id)
		return rec, nil, err
	}
	for _, l := range m.live {
		if l.rec.UUID == uuid {
			return l.rec, l, nil
		}
	}
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range recs {
		if r.UUID == uuid {
			return r, nil, nil
		}
	}
	return nil, nil, ErrNotFound
}

// notFound maps a store miss to the public error of the action.
func notFound(err error, text string) error {
	if errors.Is(err, ErrNotFound) {
		return &Error{Code: CodeNotFound, Text: text}
	}
	return internal("cannot read session", err)
}

var errClosed = &Error{Code: CodeUnavailable, Text: "service is shutting down"}

// defaultName follows OpenTera's "<type> [<year>.<count>]".
func defaultName(name string, id int64, at time.Time) string {
	return cmp.Or(name, "Session ["+at.Format("2006")+"."+itoa(id)+"]")
}
