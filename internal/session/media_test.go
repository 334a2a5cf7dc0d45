package session_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// spec is the RunSpec of the last endpoint started on port.
func (e *env) spec(port int) session.RunSpec {
	e.run.mu.Lock()
	defer e.run.mu.Unlock()
	return e.run.specs[port]
}

// storedOnSFU waits until the store's record of id says on.
func (e *env) storedOnSFU(id int64, on bool) {
	e.t.Helper()
	testutil.Eventually(e.t, 10*time.Second, func() error {
		rec, err := e.store.Get(context.Background(), id)
		if err != nil {
			return err
		}
		return testutil.Until(rec.MediaOnSFU == on, "record says media_on_sfu %v, want %v", rec.MediaOnSFU, on)
	})
}

// An auto session's media path, as its endpoint reports it, is written in
// its record and handed to the endpoint that a restart starts; it is
// cleared when the endpoint says so and when the session stops.
func TestMediaOnSFUSurvivesRestart(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	sp := e.spec(v.Port)
	if sp.Media == nil || sp.MediaOnSFU {
		t.Fatalf("new session: Media %v, MediaOnSFU %v; want a recorder and false", sp.Media, sp.MediaOnSFU)
	}
	// Many calls in a burst: the record ends as the last one asked.
	for i := range 20 {
		sp.Media.MediaOnSFU(i%2 == 1)
	}
	e.storedOnSFU(v.ID, true)

	e.restart()
	sp = e.spec(v.Port)
	if !sp.MediaOnSFU {
		t.Fatal("after a restart the endpoint starts without the session's media path (MediaOnSFU false)")
	}
	// An action after the write keeps it (every writer clones the record).
	e.mustManage(`{"session_manage":{"action":"invite","id_session":1,"session_participants":["` + partC + `"]}}`)
	e.storedOnSFU(v.ID, true)

	sp.Media.MediaOnSFU(false) // fewer than three people now
	e.storedOnSFU(v.ID, false)
	e.restart()
	if e.spec(v.Port).MediaOnSFU {
		t.Fatal("cleared path came back after a restart")
	}

	// Stopping a session forgets its path: a later start follows the mode's rule.
	e.spec(v.Port).Media.MediaOnSFU(true)
	e.storedOnSFU(v.ID, true)
	e.mustManage(`{"session_manage":{"action":"stop","id_session":1}}`)
	e.storedOnSFU(v.ID, false)
	r := e.mustManage(`{"session_manage":{"action":"start","id_session":1}}`)
	if e.spec(r.Session.Port).MediaOnSFU {
		t.Fatal("a stopped and started session starts with its old media path")
	}
}

// stuckStore is a store that stops answering writes (Redis cut off from a
// cluster node: the partition test shows it end to end), so that a test
// can hold a write in flight.
type stuckStore struct {
	session.Store
	stuck   atomic.Bool
	entered chan struct{} // gets one value per write that blocks
}

func (s *stuckStore) Put(ctx context.Context, r *session.Record) error {
	if !s.stuck.Load() {
		return s.Store.Put(ctx, r)
	}
	s.entered <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// A media path write stuck on an unreachable store does not hold up a
// shutdown (a node cut from Redis must exit for its supervisor), and a
// burst of calls makes one write at a time, not one per call.
func TestMediaWriteDoesNotHoldShutdown(t *testing.T) {
	e := newEnv(t, 3)
	st := &stuckStore{Store: e.store, entered: make(chan struct{}, 100)}
	mgr := session.NewManager(session.Config{Store: st, Runner: e.run, Ports: e.pool, ServiceKey: "VideoRehabService",
		URLs: session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075}})
	req, err := session.ParseManage([]byte(`{"session_manage":{"action":"start","id_session":0,"id_session_type":1,"session_creator_user_uuid":"` + userA + `","session_users":["` + userA + `"],"session_participants":["` + partB + `"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := mgr.Manage(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	st.stuck.Store(true)
	media := e.spec(r.Session.Port).Media
	for i := range 50 {
		media.MediaOnSFU(i%2 == 1) // ends on true: the record (false) must change
	}
	select {
	case <-st.entered: // a write is in flight, stuck
	case <-time.After(10 * time.Second):
		t.Fatal("no write of the media path reached the store")
	}
	done := make(chan struct{})
	go func() { mgr.Shutdown(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // the write's own bound is 30 s
		t.Fatal("Shutdown still waits for a media write stuck on the store after 10 s")
	}
	if n := len(st.entered); n != 0 {
		t.Fatalf("%d more writes reached the store after a burst of calls", n)
	}
}
