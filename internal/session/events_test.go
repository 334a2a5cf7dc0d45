package session_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// recSink records changes. Each call also reads the Manager, which would
// deadlock if the Manager called the sink while holding its lock.
type recSink struct {
	mu  sync.Mutex
	mgr *session.Manager
	chs []session.Change
	got chan struct{}
}

func (s *recSink) SessionEvent(c session.Change) {
	if s.mgr != nil {
		s.mgr.Running() // takes the Manager's lock
	}
	s.mu.Lock()
	s.chs = append(s.chs, c)
	s.mu.Unlock()
	select {
	case s.got <- struct{}{}:
	default:
	}
}

func (s *recSink) changes() []session.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.chs)
}

func (s *recSink) types() []session.ChangeType {
	var out []session.ChangeType
	for _, c := range s.changes() {
		out = append(out, c.Type)
	}
	return out
}

// waitFor waits until n changes were recorded.
func (s *recSink) waitFor(t *testing.T, n int) []session.Change {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if chs := s.changes(); len(chs) >= n {
			return chs
		}
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("got changes %v, want %d", s.types(), n)
		}
	}
}

// readyRunner starts endpoints that answer only when the test says so.
type readyRunner struct {
	fakeRunner
	ready chan struct{}
}

type readyEndpoint struct {
	*fakeEndpoint
	ready chan struct{}
}

func (e readyEndpoint) Ready() <-chan struct{} { return e.ready }

func (r *readyRunner) Start(ctx context.Context, spec session.RunSpec) (session.Endpoint, error) {
	ep, err := r.fakeRunner.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return readyEndpoint{ep.(*fakeEndpoint), r.ready}, nil
}

func newSinkEnv(t *testing.T, runner session.Runner, readyTimeout time.Duration) (*session.Manager, *recSink, *ports.Pool, *boltstore.Store) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sink := &recSink{got: make(chan struct{}, 1)}
	pool := ports.New(8080, 3)
	mgr := session.NewManager(session.Config{
		Store: st, Runner: runner, Ports: pool, ServiceKey: "VideoRehabService",
		URLs:   session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075},
		Events: sink, ReadyTimeout: readyTimeout,
	})
	sink.mgr = mgr
	t.Cleanup(func() { mgr.Shutdown(context.Background()) })
	return mgr, sink, pool, st
}

func manageOn(t *testing.T, mgr *session.Manager, body string) *session.Reply {
	t.Helper()
	req, err := session.ParseManage([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r, err := mgr.Manage(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return r
}

const startBody = `{"session_manage":{"action":"start","id_session":0,"session_creator_user_uuid":"` + userA +
	`","session_users":["` + userA + `"],"session_participants":["` + partB + `"]}}`

func ids(list []session.Identity) []string {
	var out []string
	for _, id := range list {
		out = append(out, string(id.Kind)+":"+id.UUID)
	}
	return out
}

func TestEventsFollowCommitsInOrder(t *testing.T) {
	mgr, sink, _, _ := newSinkEnv(t, &fakeRunner{gates: map[int]session.Gate{}, stopped: map[int]session.StopReason{}}, 0)
	manageOn(t, mgr, startBody)
	manageOn(t, mgr, `{"session_manage":{"action":"invite","id_session":1,"session_participants":["`+partC+`","`+partB+`"]}}`)
	manageOn(t, mgr, `{"session_manage":{"action":"remove","id_session":1,"session_participants":["`+partB+`"]}}`)
	manageOn(t, mgr, `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":1,"participant_uuid":"`+partC+`"}}}`)
	manageOn(t, mgr, `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":"busy","participant_uuid":"`+partC+`"}}}`)
	manageOn(t, mgr, `{"session_manage":{"action":"stop","id_session":1}}`)

	chs := sink.waitFor(t, 6)
	want := []session.ChangeType{session.ChangeStarted, session.ChangeInvited, session.ChangeRemoved,
		session.ChangeReplied, session.ChangeReplied, session.ChangeStopped}
	if got := sink.types(); !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for _, tc := range []struct {
		i           int
		added, gone []string
		members     int // users + participants after the change
	}{
		{0, []string{"user:" + userA, "participant:" + partB}, nil, 2},
		{1, []string{"participant:" + partC}, nil, 3}, // partB was already invited
		{2, nil, []string{"participant:" + partB}, 2},
		{3, nil, nil, 2},
		{4, nil, []string{"participant:" + partC}, 1},
		{5, nil, nil, 1},
	} {
		c := chs[tc.i]
		if !slices.Equal(ids(c.Added), tc.added) || !slices.Equal(ids(c.Removed), tc.gone) {
			t.Errorf("change %d (%v): added %v removed %v", tc.i, c.Type, ids(c.Added), ids(c.Removed))
		}
		if n := len(c.Session.Users) + len(c.Session.Participants); n != tc.members {
			t.Errorf("change %d (%v): %d members", tc.i, c.Type, n)
		}
	}
	if !chs[0].Session.Ready || len(chs[0].Session.Invitations) != 2 {
		t.Errorf("started view: ready %v, invitations %v", chs[0].Session.Ready, chs[0].Session.Invitations)
	}
	if r := chs[4].Reply; r == nil || r.Code != session.ReplyBusy || r.UUID != partC {
		t.Errorf("reply %+v", r)
	}
	if chs[5].Session.Status != session.StatusCompleted {
		t.Errorf("stopped status %v", chs[5].Session.Status)
	}
}

func TestCreatorRefusalEmitsOnlyStopped(t *testing.T) {
	mgr, sink, _, _ := newSinkEnv(t, &fakeRunner{gates: map[int]session.Gate{}, stopped: map[int]session.StopReason{}}, 0)
	manageOn(t, mgr, startBody)
	r := manageOn(t, mgr, `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":2,"user_uuid":"`+userA+`"}}}`)
	if r.Status != "error" {
		t.Fatalf("reply %+v", r)
	}
	sink.waitFor(t, 2)
	if got := sink.types(); !slices.Equal(got, []session.ChangeType{session.ChangeStarted, session.ChangeStopped}) {
		t.Fatalf("changes %v", got)
	}
}

func TestReadyEndpointGatesInvitations(t *testing.T) {
	run := &readyRunner{fakeRunner{gates: map[int]session.Gate{}, stopped: map[int]session.StopReason{}}, make(chan struct{})}
	mgr, sink, _, _ := newSinkEnv(t, run, 0)
	manageOn(t, mgr, startBody)
	manageOn(t, mgr, `{"session_manage":{"action":"invite","id_session":1,"session_participants":["`+partC+`"]}}`)
	time.Sleep(50 * time.Millisecond)
	if got := sink.types(); len(got) != 0 {
		t.Fatalf("changes before the endpoint is ready: %v", got)
	}
	close(run.ready)
	chs := sink.waitFor(t, 1)
	if chs[0].Type != session.ChangeStarted || len(chs[0].Added) != 3 || !chs[0].Session.Ready {
		t.Fatalf("first change %v added %v", chs[0].Type, ids(chs[0].Added))
	}
	manageOn(t, mgr, `{"session_manage":{"action":"invite","id_session":1,"session_devices":["`+partC+`"]}}`)
	if chs := sink.waitFor(t, 2); chs[1].Type != session.ChangeInvited {
		t.Fatalf("second change %v", chs[1].Type)
	}
}

func TestReadyTimeoutEndsSession(t *testing.T) {
	run := &readyRunner{fakeRunner{gates: map[int]session.Gate{}, stopped: map[int]session.StopReason{}}, make(chan struct{})}
	mgr, sink, pool, st := newSinkEnv(t, run, 50*time.Millisecond)
	manageOn(t, mgr, startBody)
	chs := sink.waitFor(t, 1)
	if chs[0].Type != session.ChangeStopped || chs[0].Session.Status != session.StatusTerminated {
		t.Fatalf("change %v status %v", chs[0].Type, chs[0].Session.Status)
	}
	rec, err := st.Get(context.Background(), 1)
	if err != nil || rec.Running || rec.Status != session.StatusTerminated {
		t.Fatalf("record %+v, %v", rec, err)
	}
	// The port is freed after the sink hears of the stop.
	testutil.Eventually(t, 5*time.Second, func() error {
		return testutil.Until(pool.InUse() == 0 && mgr.Running() == 0, "ports in use %d, running %d", pool.InUse(), mgr.Running())
	})
}

func TestShutdownEndsReadyWaiters(t *testing.T) {
	run := &readyRunner{fakeRunner{gates: map[int]session.Gate{}, stopped: map[int]session.StopReason{}}, make(chan struct{})}
	mgr, sink, _, _ := newSinkEnv(t, run, time.Hour)
	manageOn(t, mgr, startBody)
	done := make(chan struct{})
	go func() { mgr.Shutdown(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown waits for an endpoint that never gets ready")
	}
	if got := sink.types(); len(got) != 0 {
		t.Fatalf("changes %v", got)
	}
}

func TestStartOfRunningSessionInvitesAgain(t *testing.T) {
	mgr, sink, _, _ := newSinkEnv(t, &fakeRunner{gates: map[int]session.Gate{}, stopped: map[int]session.StopReason{}}, 0)
	manageOn(t, mgr, startBody)
	if r := manageOn(t, mgr, `{"session_manage":{"action":"start","id_session":1}}`); r.Status != "started" {
		t.Fatalf("reply %+v", r)
	}
	chs := sink.waitFor(t, 2)
	if chs[1].Type != session.ChangeInvited || len(chs[1].Added) != 0 || len(chs[1].Session.Invitations) != 2 {
		t.Fatalf("second change %v added %v", chs[1].Type, ids(chs[1].Added))
	}
}
