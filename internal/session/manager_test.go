package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
)

const (
	userA = "aaaaaaaa-0000-4000-8000-000000000001"
	partB = "bbbbbbbb-0000-4000-8000-000000000002"
	partC = "cccccccc-0000-4000-8000-000000000003"
)

// fakeRunner stands in for the endpoint runner: these tests are about the
// Manager's bookkeeping; the real endpoint is exercised by the integration
// tests in cmd/rehabrtc.
type fakeRunner struct {
	mu      sync.Mutex
	gates   map[int]session.Gate
	specs   map[int]session.RunSpec // the last start's, by port
	kicked  []session.Identity
	stopped map[int]session.StopReason
	fail    bool
}

func (f *fakeRunner) Start(_ context.Context, spec session.RunSpec) (session.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("runner broken")
	}
	f.gates[spec.Port] = spec.Gate
	if f.specs == nil {
		f.specs = map[int]session.RunSpec{}
	}
	f.specs[spec.Port] = spec
	return &fakeEndpoint{f: f, port: spec.Port}, nil
}

type fakeEndpoint struct {
	f    *fakeRunner
	port int
}

func (e *fakeEndpoint) Peers() []session.Peer  { return nil }
func (e *fakeEndpoint) Ready() <-chan struct{} { return closedChan() }
func (e *fakeEndpoint) Done() <-chan struct{}  { return nil } // ends only through Stop
func (e *fakeEndpoint) Err() error             { return nil }
func (e *fakeEndpoint) Kick(id session.Identity) {
	e.f.mu.Lock()
	e.f.kicked = append(e.f.kicked, id)
	e.f.mu.Unlock()
}
func (e *fakeEndpoint) Stop(_ context.Context, why session.StopReason) error {
	e.f.mu.Lock()
	e.f.stopped[e.port] = why
	e.f.mu.Unlock()
	return nil
}

// closedChan is the Ready of an endpoint that answers at once.
func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

type env struct {
	t      *testing.T
	mgr    *session.Manager
	run    *fakeRunner
	store  *boltstore.Store
	pool   *ports.Pool
	now    time.Time
	dbPath string
}

func newEnv(t *testing.T, poolSize int) *env {
	t.Helper()
	e := &env{t: t, now: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), dbPath: filepath.Join(t.TempDir(), "db")}
	e.open(poolSize)
	return e
}

func (e *env) open(poolSize int) {
	st, err := boltstore.Open(e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	e.store = st
	e.run = &fakeRunner{gates: map[int]session.Gate{}, stopped: map[int]session.StopReason{}}
	e.pool = ports.New(8080, poolSize)
	e.mgr = session.NewManager(session.Config{
		Store: st, Runner: e.run, Ports: e.pool, ServiceKey: "VideoRehabService",
		URLs: session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075},
		Now:  func() time.Time { return e.now },
	})
}

// restart simulates a process restart over the same store.
func (e *env) restart() {
	e.store.Close()
	e.open(e.pool.InUse() + 5)
	if err := e.mgr.Restore(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) manage(body string) (*session.Reply, error) {
	e.t.Helper()
	req, err := session.ParseManage([]byte(body))
	if err != nil {
		e.t.Fatalf("parse %s: %v", body, err)
	}
	return e.mgr.Manage(context.Background(), req)
}

func (e *env) mustManage(body string) *session.Reply {
	e.t.Helper()
	r, err := e.manage(body)
	if err != nil {
		e.t.Fatalf("%s: %v", body, err)
	}
	return r
}

func (e *env) start() *session.View {
	e.t.Helper()
	r := e.mustManage(`{"session_manage":{"action":"start","id_session":0,"id_session_type":1,"session_creator_user_uuid":"` + userA + `","session_users":["` + userA + `"],"session_participants":["` + partB + `"]}}`)
	if r.Status != "started" {
		e.t.Fatalf("status %q", r.Status)
	}
	return r.Session
}

func keyOf(t *testing.T, v *session.View, kind session.Kind, uuid string) string {
	t.Helper()
	for _, inv := range v.Invitations {
		if inv.Kind == kind && inv.UUID == uuid {
			_, key, _ := strings.Cut(inv.URL, "?key=")
			return key
		}
	}
	t.Fatalf("no invitation for %s %s", kind, uuid)
	return ""
}

func (e *env) admit(port int, key, uuid string) (session.Identity, error) {
	return e.run.gates[port].Admit(context.Background(), key, uuid)
}

func eventTypes(v *session.View) []session.EventType {
	var out []session.EventType
	for _, ev := range v.Events {
		out = append(out, ev.Type)
	}
	return out
}

func TestStartCreatesSession(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	if v.ID != 1 || v.Port != 8080 || v.Status != session.StatusInProgress || v.CreatorUUID != userA {
		t.Fatalf("session %+v", v)
	}
	if !strings.HasPrefix(v.URLParticipants, "https://rehab.example:40075/webrtc/8080/participants?key=") {
		t.Fatalf("participants url %q", v.URLParticipants)
	}
	if len(v.Invitations) != 2 || v.Key == "" || len(v.Key) < 22 {
		t.Fatalf("invitations %+v key %q", v.Invitations, v.Key)
	}
	if got := eventTypes(v); len(got) != 1 || got[0] != session.EventStart {
		t.Fatalf("events %v", got)
	}
	key := keyOf(t, v, session.KindParticipant, partB)
	id, err := e.admit(8080, key, "")
	if err != nil || id != (session.Identity{Kind: session.KindParticipant, UUID: partB}) {
		t.Fatalf("admit personal token: %+v %v", id, err)
	}
	_, kindKey, _ := strings.Cut(v.URLParticipants, "?key=")
	if id, err := e.admit(8080, kindKey, partB); err != nil || id.UUID != partB {
		t.Fatalf("kind-level key with invited uuid: %+v %v", id, err)
	}
	for name, tc := range map[string]struct{ key, uuid string }{
		"kind key, uuid not invited":  {kindKey, partC},
		"kind key, no uuid":           {kindKey, ""},
		"kind key, user uuid":         {kindKey, userA},
		"personal token, other uuid":  {key, partC},
		"unknown key":                 {"nope", partB},
		"empty key":                   {"", partB},
		"users key as participant id": {v.Key, partB},
	} {
		if _, err := e.admit(8080, tc.key, tc.uuid); !errors.Is(err, session.ErrDenied) {
			t.Errorf("%s: err = %v, want ErrDenied", name, err)
		}
	}
}

func TestStartRunningIsIdempotent(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	r := e.mustManage(`{"session_manage":{"action":"start","id_session":1}}`)
	if r.Status != "started" || r.Session.Port != v.Port || r.Session.Key != v.Key || len(r.Session.Events) != 1 {
		t.Fatalf("restart of a running session changed it: %+v", r.Session)
	}
}

func TestSecondSessionKeepsFirst(t *testing.T) {
	e := newEnv(t, 3)
	first := e.start()
	second := e.start()
	if second.ID == first.ID || second.Port == first.Port {
		t.Fatalf("second session %d on port %d", second.ID, second.Port)
	}
	if _, ok := e.run.stopped[first.Port]; ok {
		t.Fatal("starting a second session stopped the creator's first one")
	}
	if e.mgr.Running() != 2 {
		t.Fatalf("running = %d", e.mgr.Running())
	}
}

func TestStopAndRestart(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	key := keyOf(t, v, session.KindParticipant, partB)
	e.now = e.now.Add(90 * time.Second)
	r := e.mustManage(`{"session_manage":{"action":"stop","id_session":1}}`)
	if r.Status != "stopped" || r.Session.Status != session.StatusCompleted || r.Session.Duration != 90 {
		t.Fatalf("stop reply %+v", r.Session)
	}
	if r.Session.URLUsers != "" || r.Session.Key != "" || r.Session.Invitations != nil {
		t.Fatal("a stopped session still shows links")
	}
	if e.run.stopped[8080] != session.StopEnded || e.pool.InUse() != 0 {
		t.Fatalf("endpoint not stopped or port not freed: %v, in use %d", e.run.stopped, e.pool.InUse())
	}
	if _, err := e.admit(8080, key, ""); err == nil {
		t.Fatal("key still admits after stop")
	}
	if _, err := e.manage(`{"session_manage":{"action":"stop","id_session":1}}`); !isCode(err, session.CodeNotFound, "No matching session to stop") {
		t.Fatalf("second stop: %v", err)
	}
	// start again on the same id restarts it, with new keys, same members.
	e.now = e.now.Add(time.Hour)
	r = e.mustManage(`{"session_manage":{"action":"start","id_session":1}}`)
	if r.Status != "started" || r.Session.ID != 1 || r.Session.Key == v.Key || len(r.Session.Participants) != 1 {
		t.Fatalf("restart: %+v", r.Session)
	}
	e.now = e.now.Add(10 * time.Second)
	r = e.mustManage(`{"session_manage":{"action":"stop","id_session":1}}`)
	if r.Session.Duration != 100 {
		t.Fatalf("duration did not accumulate: %d", r.Session.Duration)
	}
	want := []session.EventType{3, 4, 3, 4}
	if got := eventTypes(r.Session); len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("events %v", got)
	}
}

func isCode(err error, code session.Code, text string) bool {
	var se *session.Error
	return errors.As(err, &se) && se.Code == code && (text == "" || se.Text == text)
}

func TestInviteRemove(t *testing.T) {
	e := newEnv(t, 3)
	e.start()
	r := e.mustManage(`{"session_manage":{"action":"invite","id_session":1,"session_participants":["` + partB + `","` + partC + `","` + strings.ToUpper(partC) + `"]}}`)
	if r.Status != "invited" || len(r.Session.Participants) != 2 || len(r.Session.Users) != 1 {
		t.Fatalf("invite: %+v", r.Session)
	}
	if got := eventTypes(r.Session); len(got) != 2 || got[1] != session.EventJoin || r.Session.Events[1].Text != "Participant: "+partC {
		t.Fatalf("events %+v", r.Session.Events)
	}
	keyC := keyOf(t, r.Session, session.KindParticipant, partC)
	if _, err := e.admit(8080, keyC, ""); err != nil {
		t.Fatalf("new invitee cannot enter: %v", err)
	}
	// remove with the other lists omitted removes only partC.
	r = e.mustManage(`{"session_manage":{"action":"remove","id_session":1,"session_participants":["` + partC + `"]}}`)
	if r.Status != "removed" || len(r.Session.Participants) != 1 || len(r.Session.Users) != 1 {
		t.Fatalf("remove: %+v", r.Session)
	}
	if len(e.run.kicked) != 1 || e.run.kicked[0].UUID != partC {
		t.Fatalf("kicked %+v", e.run.kicked)
	}
	if _, err := e.admit(8080, keyC, ""); err == nil {
		t.Fatal("removed invitee's key still admits")
	}
	last := r.Session.Events[len(r.Session.Events)-1]
	if last.Type != session.EventLeave || last.Text != "Participant: "+partC {
		t.Fatalf("leave event %+v", last)
	}
}

func TestUnknownSessionErrors(t *testing.T) {
	e := newEnv(t, 3)
	for _, body := range []string{
		`{"session_manage":{"action":"invite","id_session":9,"session_participants":[]}}`,
		`{"session_manage":{"action":"remove","id_session":9,"session_participants":[]}}`,
		`{"session_manage":{"action":"invite_reply","id_session":9,"parameters":{"reply_code":2,"participant_uuid":"` + partB + `"}}}`,
		`{"session_manage":{"action":"stop","id_session":9}}`,
		`{"session_manage":{"action":"start","id_session":9}}`,
	} {
		if _, err := e.manage(body); !isCode(err, session.CodeNotFound, "") {
			t.Errorf("%s: err = %v, want not found", body, err)
		}
	}
}

func TestInviteReply(t *testing.T) {
	e := newEnv(t, 3)
	e.start()
	r := e.mustManage(`{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":"accept","participant_uuid":"` + partB + `"}}}`)
	if r.Status != "OK" || len(r.Session.Participants) != 1 {
		t.Fatalf("accept: %+v", r)
	}
	r = e.mustManage(`{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":3,"participant_uuid":"` + partB + `"}}}`)
	if r.Status != "OK" || len(r.Session.Participants) != 0 {
		t.Fatalf("busy: %+v", r)
	}
	last := r.Session.Events[len(r.Session.Events)-1]
	if last.Type != session.EventJoinRefused || last.Text != "Participant "+partB {
		t.Fatalf("refused event %+v", last)
	}
	if _, err := e.manage(`{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":2,"participant_uuid":"` + partC + `"}}}`); !isCode(err, session.CodeBadRequest, "") {
		t.Fatalf("reply of a stranger: %v", err)
	}
	r = e.mustManage(`{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":2,"user_uuid":"` + userA + `"}}}`)
	if r.Status != "error" || r.ErrorText != "Creator refused to join session - session ended" || r.Session.Status != session.StatusCompleted {
		t.Fatalf("creator refused: %+v", r)
	}
	if e.mgr.Running() != 0 {
		t.Fatal("session still running after the creator refused")
	}
}

func TestPoolExhausted(t *testing.T) {
	e := newEnv(t, 1)
	e.start()
	before, _ := e.mgr.List(context.Background(), false)
	_, err := e.manage(`{"session_manage":{"action":"start","id_session":0}}`)
	if !isCode(err, session.CodeUnavailable, "No available port left") {
		t.Fatalf("err = %v", err)
	}
	after, _ := e.mgr.List(context.Background(), false)
	if len(after) != len(before) || e.mgr.Running() != 1 {
		t.Fatalf("a failed start changed state: %d → %d sessions", len(before), len(after))
	}
}

func TestRunnerFailureChangesNothing(t *testing.T) {
	e := newEnv(t, 2)
	e.run.fail = true
	if _, err := e.manage(`{"session_manage":{"action":"start","id_session":0}}`); !isCode(err, session.CodeInternal, "Cannot create process") {
		t.Fatalf("err = %v", err)
	}
	if e.pool.InUse() != 0 || e.mgr.Running() != 0 {
		t.Fatal("port or session leaked after a runner failure")
	}
}

func TestRestoreAfterRestart(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	e.start()
	e.mustManage(`{"session_manage":{"action":"stop","id_session":2}}`)
	key := keyOf(t, v, session.KindParticipant, partB)
	e.restart()
	if e.mgr.Running() != 1 {
		t.Fatalf("running after restart = %d", e.mgr.Running())
	}
	got, err := e.mgr.Get(context.Background(), 1)
	if err != nil || got.Port != v.Port || got.Key != v.Key {
		t.Fatalf("restored %+v, %v", got, err)
	}
	if id, err := e.admit(v.Port, key, ""); err != nil || id.UUID != partB {
		t.Fatalf("old personal link after restart: %v", err)
	}
	// new sessions never take the restored port or id.
	n := e.start()
	if n.Port == v.Port || n.ID <= 2 {
		t.Fatalf("new session %d on port %d", n.ID, n.Port)
	}
}

func TestShutdownKeepsSessionsRunning(t *testing.T) {
	e := newEnv(t, 3)
	e.start()
	e.mgr.Shutdown(context.Background())
	if e.run.stopped[8080] != session.StopShutdown {
		t.Fatalf("endpoint stop reason %v", e.run.stopped[8080])
	}
	if _, err := e.manage(`{"session_manage":{"action":"start","id_session":0}}`); !isCode(err, session.CodeUnavailable, "") {
		t.Fatalf("start after shutdown: %v", err)
	}
	rec, _ := e.store.Get(context.Background(), 1)
	if !rec.Running {
		t.Fatal("shutdown marked the session stopped: it would not come back")
	}
}

func TestViewJSONShape(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"id_session", "session_uuid", "session_name", "id_session_type", "id_creator_user", "session_creator_uuid",
		"session_start_datetime", "session_duration", "session_status", "session_parameters", "session_users",
		"session_participants", "session_devices", "session_events", "session_key", "session_url_users",
		"session_url_participants", "session_url_devices", "session_invitations", "session_port"} {
		if _, ok := m[k]; !ok {
			t.Errorf("session JSON lacks %q", k)
		}
	}
}
