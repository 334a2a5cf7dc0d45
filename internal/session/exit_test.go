package session_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// mortalEndpoint is an endpoint that can die on its own, like a child
// process: its Done channel closes.
type mortalEndpoint struct {
	done    chan struct{}
	once    sync.Once
	stopped chan struct{}
}

func (e *mortalEndpoint) die() { e.once.Do(func() { close(e.done) }) }

func (e *mortalEndpoint) Ready() <-chan struct{} { return closedChan() }
func (e *mortalEndpoint) Kick(session.Identity)  {}
func (e *mortalEndpoint) Peers() []session.Peer  { return nil }
func (e *mortalEndpoint) Done() <-chan struct{}  { return e.done }
func (e *mortalEndpoint) Err() error             { return errors.New("signal: killed") }
func (e *mortalEndpoint) Stop(context.Context, session.StopReason) error {
	e.die()
	close(e.stopped)
	return nil
}

type mortalRunner struct {
	mu  sync.Mutex
	eps []*mortalEndpoint
}

func (r *mortalRunner) Start(context.Context, session.RunSpec) (session.Endpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := &mortalEndpoint{done: make(chan struct{}), stopped: make(chan struct{})}
	r.eps = append(r.eps, e)
	return e, nil
}

type changeLog struct{ ch chan session.Change }

func (c changeLog) SessionEvent(ch session.Change) { c.ch <- ch }

// TestEndpointDeathTerminatesSession: an endpoint that dies on its own
// ends its session as terminated, frees its port and tells the sink; one
// that is stopped or shut down does not.
func TestEndpointDeathTerminatesSession(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, pool, sink := &mortalRunner{}, ports.New(9000, 3), changeLog{make(chan session.Change, 16)}
	mgr := session.NewManager(session.Config{Store: st, Runner: run, Ports: pool, Events: sink, ServiceKey: "VideoRehabService"})
	start := func() *session.View {
		req, _ := session.ParseManage([]byte(`{"session_manage":{"action":"start","id_session":0}}`))
		r, err := mgr.Manage(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return r.Session
	}
	crashed, stopped, kept := start(), start(), start()

	run.eps[0].die()
	testutil.Eventually(t, time.Second, func() error {
		return testutil.Until(mgr.Running() == 2 && pool.InUse() == 2, "after the death: %d running, %d ports in use", mgr.Running(), pool.InUse())
	})
	v, err := mgr.Get(context.Background(), crashed.ID)
	if err != nil || v.Status != session.StatusTerminated || v.Events[len(v.Events)-1].Type != session.EventStop {
		t.Fatalf("crashed session: %+v %v", v, err)
	}
	<-run.eps[0].stopped // reaped through Stop, so its goroutines end
	for c := range sink.ch {
		if c.Type == session.ChangeStopped {
			if c.Session.ID != crashed.ID {
				t.Fatalf("stop event for session %d", c.Session.ID)
			}
			break
		}
	}

	req, _ := session.ParseManage([]byte(`{"session_manage":{"action":"stop","id_session":` + strconv.FormatInt(stopped.ID, 10) + `}}`))
	if _, err := mgr.Manage(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	mgr.Shutdown(context.Background()) // waits for every watcher
	for id, want := range map[int64]session.Status{stopped.ID: session.StatusCompleted, kept.ID: session.StatusInProgress} {
		if v, _ := mgr.Get(context.Background(), id); v.Status != want {
			t.Errorf("session %d: status %d, want %d", id, v.Status, want)
		}
	}
}
