package ehrc

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
)

// newManager is a real session.Manager on a bbolt file, in-process
// endpoints without listeners and a port pool that binds nothing.
func newManager(t *testing.T) *session.Manager {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "sessions.db"))
	if err != nil {
		t.Fatal(err)
	}
	mgr := session.NewManager(session.Config{
		Store: st, Runner: &endpoint.Runner{}, Ports: ports.New(20000, 4), ServiceKey: "VideoRehabService",
	})
	t.Cleanup(func() {
		mgr.Shutdown(context.Background())
		st.Close()
	})
	return mgr
}

// A promoted room is a session_manage session: same record, START and STOP
// events, status and duration, started and stopped with the room.
func TestPromoteRoom(t *testing.T) {
	mgr := newManager(t)
	e := newTestEnv(t, Config{Sessions: mgr})
	c := startConsultation(t, e, "doc", false, true)
	wantErr(t, "a patient promoting", c.patient.call("promote-room", map[string]string{"room-id": c.room}), "forbidden")
	noErr(t, "promote-room", c.doctor.call("promote-room", map[string]string{"room-id": c.room}))
	m := c.doctor.expect("room-promoted")
	id := int64(m["id_session"].(float64))
	if m["room-id"] != c.room || id == 0 || m["session_uuid"] == "" {
		t.Fatalf("room-promoted %v", m)
	}
	noErr(t, "promote again", c.doctor.call("promote-room", map[string]string{"room-id": c.room}))
	v, err := mgr.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var params struct{ EHRC map[string]string }
	_ = json.Unmarshal(v.Parameters, &params)
	doctorUUID := e.svc.reg.lookup("doc").doctorUUID
	switch {
	case v.Status != session.StatusInProgress || v.Name != "Consultation doc" || v.CreatorUUID != doctorUUID:
		t.Fatalf("session %+v", v)
	case !slices.Equal(v.Users, []string{doctorUUID}) || !slices.Equal(v.Participants, []string{c.room}):
		t.Fatalf("members %v %v", v.Users, v.Participants)
	case params.EHRC["namespace"] != "doc" || params.EHRC["room"] != c.room:
		t.Fatalf("parameters %s", v.Parameters)
	}
	noErr(t, "doctor-ended", c.doctor.call("doctor-ended", map[string]string{"patientID": c.patient.ID()}))
	c.patient.expect("doctor-ended")
	waitFor(t, "session stopped", func() bool {
		v, err := mgr.Get(context.Background(), id)
		return err == nil && v.Status == session.StatusCompleted
	})
	v, _ = mgr.Get(context.Background(), id)
	var types []session.EventType
	for _, ev := range v.Events {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []session.EventType{session.EventStart, session.EventStop}) {
		t.Fatalf("events %v", types)
	}
}

// gatedSessions is a hand-written fake: starts wait for the test.
type gatedSessions struct {
	release chan struct{}
	fail    bool
	calls   chan *session.Request
}

func (g *gatedSessions) Manage(ctx context.Context, req *session.Request) (*session.Reply, error) {
	g.calls <- req
	if req.Action == session.ActionStart {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if g.fail {
		return nil, errors.New("store down")
	}
	return &session.Reply{Status: "started", Session: &session.View{ID: 7, UUID: "u"}}, nil
}

// A room that ends while its session starts stops it as soon as it runs;
// a start that fails is reported to the doctor; no Sessions, no promotion.
func TestPromoteRoomRaces(t *testing.T) {
	t.Run("ends while starting", func(t *testing.T) {
		g := &gatedSessions{release: make(chan struct{}), calls: make(chan *session.Request, 4)}
		e := newTestEnv(t, Config{Sessions: g})
		c := startConsultation(t, e, "doc", true, false)
		noErr(t, "promote-room", c.doctor.call("promote-room", map[string]string{"room-id": c.room}))
		<-g.calls // the start is in flight
		noErr(t, "patient-ended", c.patient.call("patient-ended", map[string]string{}))
		c.doctor.expect("patient-ended")
		close(g.release)
		if stop := <-g.calls; stop.Action != session.ActionStop || stop.SessionID != 7 {
			t.Fatalf("then %+v", stop)
		}
		quiet(t, c.doctor) // no room-promoted for a room that is gone
	})
	t.Run("start fails", func(t *testing.T) {
		g := &gatedSessions{release: make(chan struct{}), calls: make(chan *session.Request, 4), fail: true}
		close(g.release)
		e := newTestEnv(t, Config{Sessions: g})
		for _, native := range []bool{false, true} {
			c := startConsultation(t, e, "doc"+strconv.FormatBool(native), native, false)
			c.doctor.emit("promote-room", map[string]string{"room-id": c.room}) // accepted, then fails
			if m := c.doctor.expect("error"); m["code"] != errRecordFailed.Code {
				t.Fatalf("error %v", m)
			}
		}
	})
	t.Run("not configured", func(t *testing.T) {
		e := newTestEnv(t, Config{})
		c := startConsultation(t, e, "doc", false, false)
		wantErr(t, "promote-room", c.doctor.call("promote-room", map[string]string{"room-id": c.room}), "unavailable")
	})
}

// Close disconnects everyone (native clients are told to come back) and
// stops the recordings of the rooms it ends before returning.
func TestCloseStopsRecordings(t *testing.T) {
	mgr := newManager(t)
	e := newTestEnv(t, Config{Sessions: mgr})
	c := startConsultation(t, e, "doc", false, true)
	noErr(t, "promote-room", c.doctor.call("promote-room", map[string]string{"room-id": c.room}))
	id := int64(c.doctor.expect("room-promoted")["id_session"].(float64))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	patient := c.patient.(*nativeClient)
	patient.expect("client-disconnected") // Socket.IO closes first
	patient.expect("server-shutdown")
	patient.waitClosed()
	c.doctor.(*sioClient).waitClosed()
	if v, err := mgr.Get(ctx, id); err != nil || v.Status != session.StatusCompleted {
		t.Fatalf("recorded session after Close: %+v %v", v, err)
	}
	if code, _ := e.get("/api/create-room", ""); code != 503 {
		t.Fatalf("create-room after Close: %d", code)
	}
}
