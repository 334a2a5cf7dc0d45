package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// fakeHome is one holding of a session; lose ends it as Redis would.
type fakeHome struct {
	token    int64
	lost     chan struct{}
	once     sync.Once
	released bool
}

func (h *fakeHome) Token() int64                  { return h.token }
func (h *fakeHome) Lost() <-chan struct{}         { return h.lost }
func (h *fakeHome) Err() error                    { return nil }
func (h *fakeHome) Release(context.Context) error { h.released = true; return nil }
func (h *fakeHome) lose()                         { h.once.Do(func() { close(h.lost) }) }

// fakeHomes stands for the cluster (Redis leases, other nodes' internal
// listeners; internal/cluster and cmd/rehabrtc test the real ones): these
// tests are about what the Manager does with a home.
type fakeHomes struct {
	mu      sync.Mutex
	take    func(id int64) (session.Home, error)
	forward func(id int64, req *session.Request) (*session.Reply, error)
	taken   map[int64]*fakeHome
}

func (f *fakeHomes) Take(_ context.Context, id int64) (session.Home, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.take != nil {
		return f.take(id)
	}
	h := &fakeHome{token: int64(len(f.taken) + 1), lost: make(chan struct{})}
	f.taken[id] = h
	return h, nil
}

func (f *fakeHomes) Forward(_ context.Context, id int64, req *session.Request) (*session.Reply, error) {
	if f.forward != nil {
		return f.forward(id, req)
	}
	return nil, session.ErrNoHome
}

func (f *fakeHomes) Place(context.Context, *session.Request) (*session.Reply, bool, error) {
	return nil, false, nil
}

func (f *fakeHomes) home(id int64) *fakeHome {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taken[id]
}

// clusterManager is a Manager of env's store with homes.
func (e *env) clusterManager(h *fakeHomes) *session.Manager {
	m := session.NewManager(session.Config{
		Store: e.store, Runner: e.run, Ports: ports.New(8080, 4), ServiceKey: "VideoRehabService", Homes: h,
		URLs: session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075},
		Now:  func() time.Time { return e.now },
	})
	e.t.Cleanup(func() { m.Shutdown(context.Background()) })
	return m
}

// TestHomeLostStopsServingAtOnce: when a session's home is lost, its keys
// die and its peers are told to reconnect, and the record is left as it
// was (running): the new home owns it.
func TestHomeLostStopsServingAtOnce(t *testing.T) {
	e := newEnv(t, 4)
	homes := &fakeHomes{taken: map[int64]*fakeHome{}}
	m := e.clusterManager(homes)
	req, _ := session.ParseManage([]byte(`{"session_manage":{"action":"start","session_users":["` + userA + `"]}}`))
	r, err := m.Manage(context.Background(), req)
	if err != nil || r.Status != "started" {
		t.Fatalf("start: %v %+v", err, r)
	}
	id, port := r.Session.ID, r.Session.Port
	key := keyOf(t, r.Session, session.KindUser, userA)
	gate := e.run.gates[port]
	homes.home(id).lose()
	testutil.Eventually(t, 2*time.Second, func() error {
		return testutil.Until(m.Running() == 0, "still running")
	})
	if _, err := gate.Admit(context.Background(), key, userA); !errors.Is(err, session.ErrDenied) {
		t.Fatalf("key of a lost session admits: %v", err)
	}
	e.run.mu.Lock()
	why, stopped := e.run.stopped[port]
	e.run.mu.Unlock()
	if !stopped || why != session.StopShutdown {
		t.Fatalf("endpoint stopped %v with %v, want StopShutdown", stopped, why)
	}
	rec, err := e.store.Get(context.Background(), id)
	if err != nil || !rec.Running || rec.Port != port {
		t.Fatalf("record after the loss: %+v %v; want it running on %d", rec, err, port)
	}
}

// TestRestoreAndClaimOnlyWhatItCanHold: a running session held by another
// node is neither restored nor terminated; once its home is free, Claim
// brings it back on its port with its keys.
func TestRestoreAndClaimOnlyWhatItCanHold(t *testing.T) {
	e := newEnv(t, 4)
	v := e.start() // single node: running in the store
	key := keyOf(t, v, session.KindUser, userA)
	e.mgr.Shutdown(context.Background())

	elsewhere := true
	homes := &fakeHomes{taken: map[int64]*fakeHome{}}
	homes.take = func(id int64) (session.Home, error) {
		if elsewhere {
			return nil, session.ErrElsewhere
		}
		h := &fakeHome{token: 7, lost: make(chan struct{})}
		homes.taken[id] = h
		return h, nil
	}
	m := e.clusterManager(homes)
	if err := m.Restore(context.Background()); err != nil || m.Running() != 0 {
		t.Fatalf("restore of a session held elsewhere: %v, %d running", err, m.Running())
	}
	if rec, _ := e.store.Get(context.Background(), v.ID); !rec.Running {
		t.Fatal("a session held elsewhere was terminated")
	}
	homes.mu.Lock()
	elsewhere = false
	homes.mu.Unlock()
	if n, err := m.Claim(context.Background()); err != nil || n != 1 {
		t.Fatalf("claim: %d, %v", n, err)
	}
	if _, err := e.run.gates[v.Port].Admit(context.Background(), key, userA); err != nil {
		t.Fatalf("old key after the claim: %v", err)
	}
	if n, _ := m.Claim(context.Background()); n != 0 {
		t.Fatalf("claimed again: %d", n)
	}
}

// TestActionOnAnotherNodesSession: an action on a session another node
// serves is forwarded and its reply returned; the home side (Here) never
// forwards again.
func TestActionOnAnotherNodesSession(t *testing.T) {
	e := newEnv(t, 4)
	var got []int64
	homes := &fakeHomes{taken: map[int64]*fakeHome{}, forward: func(id int64, req *session.Request) (*session.Reply, error) {
		got = append(got, id)
		return &session.Reply{Status: "stopped"}, nil
	}}
	m := e.clusterManager(homes)
	req, _ := session.ParseManage([]byte(`{"session_manage":{"action":"stop","id_session":5}}`))
	if r, err := m.Manage(context.Background(), req); err != nil || r.Status != "stopped" || len(got) != 1 || got[0] != 5 {
		t.Fatalf("forwarded stop: %+v %v %v", r, err, got)
	}
	_, err := m.Manage(session.Here(context.Background()), req)
	if !isCode(err, session.CodeUnavailable, "session is moving to another node, try again") || len(got) != 1 {
		t.Fatalf("home side: %v, forwarded %d times", err, len(got))
	}
}

// TestDrainHandsOverAfterStop: Drain calls handOver for each session once
// its endpoint has stopped (peers told to reconnect) and its home is
// released, never before (two homes would serve it); a node that has
// drained refuses to claim; another Manager claims the session at once
// with ClaimSession, on its port with its keys.
func TestDrainHandsOverAfterStop(t *testing.T) {
	e := newEnv(t, 4)
	homes := &fakeHomes{taken: map[int64]*fakeHome{}}
	m := e.clusterManager(homes)
	req, _ := session.ParseManage([]byte(`{"session_manage":{"action":"start","session_users":["` + userA + `"]}}`))
	r, err := m.Manage(context.Background(), req)
	if err != nil || r.Status != "started" {
		t.Fatalf("start: %v %+v", err, r)
	}
	id, port := r.Session.ID, r.Session.Port
	key := keyOf(t, r.Session, session.KindUser, userA)
	var handed []int64
	m.Drain(context.Background(), func(_ context.Context, got int64) {
		e.run.mu.Lock()
		why, stopped := e.run.stopped[port]
		e.run.mu.Unlock()
		if !stopped || why != session.StopShutdown || !homes.home(got).released {
			t.Errorf("session %d handed over before it stopped here (stopped %v, %v, released %v)", got, stopped, why, homes.home(got).released)
		}
		handed = append(handed, got)
	})
	if len(handed) != 1 || handed[0] != id || m.Running() != 0 {
		t.Fatalf("handed %v, %d still running; want [%d], 0", handed, m.Running(), id)
	}
	if ok, err := m.ClaimSession(context.Background(), id); ok || err == nil {
		t.Fatalf("a drained node claims: %v %v", ok, err)
	}
	other := e.clusterManager(&fakeHomes{taken: map[int64]*fakeHome{}})
	if ok, err := other.ClaimSession(context.Background(), id); !ok || err != nil {
		t.Fatalf("claim of the handed-over session: %v %v", ok, err)
	}
	if _, err := e.run.gates[port].Admit(context.Background(), key, userA); err != nil {
		t.Fatalf("old key after the hand-over: %v", err)
	}
}

// heldPorts fails the first Claim of a port as a cluster does while the
// port's former node is still alive in Redis.
type heldPorts struct {
	session.Ports
	mu   sync.Mutex
	held int // Claims to fail
}

func (p *heldPorts) Claim(port int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held > 0 {
		p.held--
		return session.ErrPortHeldByNode
	}
	return p.Ports.Claim(port)
}

// TestClaimWaitsForAPortStillHeld: a claim whose port is still held by the
// former home node (killed between its heartbeat and its lease renewal)
// gives the home back and leaves the session running, not terminated; the
// next claim restores it with its keys.
func TestClaimWaitsForAPortStillHeld(t *testing.T) {
	e := newEnv(t, 4)
	v := e.start()
	key := keyOf(t, v, session.KindUser, userA)
	e.mgr.Shutdown(context.Background())
	homes := &fakeHomes{taken: map[int64]*fakeHome{}}
	m := session.NewManager(session.Config{
		Store: e.store, Runner: e.run, Ports: &heldPorts{Ports: ports.New(8080, 4), held: 1}, ServiceKey: "VideoRehabService", Homes: homes,
		URLs: session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075},
		Now:  func() time.Time { return e.now },
	})
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	if n, err := m.Claim(context.Background()); err != nil || n != 0 {
		t.Fatalf("claim with the port still held: %d, %v", n, err)
	}
	if rec, err := e.store.Get(context.Background(), v.ID); err != nil || !rec.Running {
		t.Fatalf("session after a claim that met its port held: %+v %v; want it running", rec, err)
	}
	if h := homes.home(v.ID); h == nil || !h.released {
		t.Fatal("the home taken for the failed claim was not given back")
	}
	if n, err := m.Claim(context.Background()); err != nil || n != 1 {
		t.Fatalf("next claim: %d, %v", n, err)
	}
	if _, err := e.run.gates[v.Port].Admit(context.Background(), key, userA); err != nil {
		t.Fatalf("old key after the claim: %v", err)
	}
}
