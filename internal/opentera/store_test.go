package opentera_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
)

// eventTypes lists the types of the events the main server stored.
func (e *env) dbEvents(id int64) (types []int, texts []string) {
	for _, ev := range e.main.Events(id) {
		types = append(types, int(ev["id_session_event_type"].(float64)))
		text, _ := ev["session_event_text"].(string)
		texts = append(texts, text)
	}
	return types, texts
}

func bodyOf(t *testing.T, r teratest.Request) string {
	t.Helper()
	b, err := json.Marshal(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBackendBookkeeping: the main server's database gets the session, its
// START/JOIN/LEAVE/JOIN_REFUSED/STOP events (3, 12, 13, 14, 4) with the
// service key as context, the members, status 2 and the accumulated
// duration, across a restart of the session.
func TestBackendBookkeeping(t *testing.T) {
	e := newEnv(t, envOpts{backend: true})
	s := e.start([]string{userA}, []string{partP}, nil)
	if s.ID != 1 || s.UUID != "5e551000-0000-4000-8000-000000000001" || !strings.HasPrefix(s.Name, "Type 1 [") {
		t.Fatalf("the main server's id, uuid and name: %+v", s)
	}
	calls := e.main.Calls()
	const create = `{"session":{"id_creator_user":1,"id_session":0,"id_session_type":1,"session_devices_uuids":[],` +
		`"session_parameters":"{\"recordable\":true}","session_participants_uuids":["` + partP + `"],"session_users_uuids":["` + userA + `"]}}`
	if len(calls) != 3 || calls[0].Path != "/api/service/sessions" || bodyOf(t, calls[0]) != create {
		t.Fatalf("create: %+v", calls)
	}
	if calls[1].Path != "/api/service/sessiontypes" || calls[1].Query != "id_session_type=1" {
		t.Fatalf("session type lookup: %+v", calls[1])
	}
	ev := calls[2].Body["session_event"].(map[string]any)
	if calls[2].Path != "/api/service/sessions/events" || ev["id_session_event"] != 0.0 || ev["id_session"] != 1.0 ||
		ev["id_session_event_type"] != 3.0 || ev["session_event_context"] != serviceKey || ev["session_event_text"] != nil {
		t.Fatalf("START event: %+v", calls[2])
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000-07:00", ev["session_event_datetime"].(string)); err != nil {
		t.Fatalf("event time: %v", err)
	}

	e.clock.add(90 * time.Second)
	e.manage(map[string]any{"action": "invite", "id_session": 1, "session_participants": []string{partQ}})
	e.manage(map[string]any{"action": "remove", "id_session": 1, "session_participants": []string{partP}})
	e.manage(map[string]any{"action": "invite", "id_session": 1, "session_users": []string{userB}})
	e.manage(map[string]any{"action": "invite_reply", "id_session": 1, "parameters": map[string]any{"reply_code": 2, "participant_uuid": partQ}})
	_, _, users, parts, _ := e.main.Session(1)
	if !slices.Equal(users, []string{userA, userB}) || !slices.Equal(parts, []string{partQ, partP}) {
		t.Fatalf("database members: users %v participants %v (the removed stay, for the history)", users, parts)
	}
	e.clock.add(30 * time.Second)
	r := e.manage(map[string]any{"action": "stop", "id_session": 1})
	if st, dur, _, _, _ := e.main.Session(1); r.Status != "stopped" || st != 2 || dur != 120 {
		t.Fatalf("after stop: reply %q, status %d, duration %d", r.Status, st, dur)
	}

	// Restart the same session: loaded from the main server, back in
	// progress, and its duration accumulates.
	r = e.manage(map[string]any{"action": "start", "id_session": 1, "session_users": []string{userA}})
	if st, _, _, _, _ := e.main.Session(1); r.Status != "started" || st != 1 {
		t.Fatalf("restart: %+v, status %d", r, st)
	}
	if got := r.session(t); len(got.Events) != 7 || got.Events[0].ID < 100 {
		t.Fatalf("the reply shows the database's events: %+v", got.Events)
	}
	e.clock.add(60 * time.Second)
	r = e.manage(map[string]any{"action": "stop", "id_session": 1})
	if st, dur, _, _, _ := e.main.Session(1); st != 2 || dur != 180 {
		t.Fatalf("after the second stop: status %d, duration %d", st, dur)
	}
	types, texts := e.dbEvents(1)
	if !slices.Equal(types, []int{3, 12, 13, 12, 14, 4, 3, 4}) {
		t.Fatalf("event types %v", types)
	}
	wantTexts := []string{"", "Participant: " + partQ, "Participant: " + partP, "User: " + userB, "Participant " + partQ, "", "", ""}
	if !slices.Equal(texts, wantTexts) {
		t.Fatalf("event texts %q", texts)
	}
	if got := r.session(t); got.Status != 2 || got.Duration != 180 || len(got.Events) != 0 || got.Key != "" {
		t.Fatalf("stop answers the database's session, as OpenTera's: %s", r.Session)
	}
}

// TestServiceTokenRemint: the main server restarts with a new secret; the
// next call gets 401, re-mints with the new key from Redis, and succeeds.
func TestServiceTokenRemint(t *testing.T) {
	e := newEnv(t, envOpts{backend: true})
	e.start([]string{userA}, []string{partP}, nil)
	e.main.Rotate("rotated-secret")
	e.redis.Set(opentera.ServiceTokenKey, "rotated-secret")
	r := e.manage(map[string]any{"action": "invite", "id_session": 1, "session_participants": []string{partQ}})
	if r.Status != "invited" || e.main.Unauth != 1 {
		t.Fatalf("after rotation: %+v, %d refusals", r, e.main.Unauth)
	}
	// A secret the main server does not know: one retry, then an error.
	e.redis.Set(opentera.ServiceTokenKey, "stale")
	e.main.Rotate("newer")
	r = e.manage(map[string]any{"action": "invite", "id_session": 1, "session_devices": []string{devD}})
	if r.Status != "error" || r.ErrorText != "Error updating session" || e.main.Unauth != 3 {
		t.Fatalf("bad secret: %+v, %d refusals", r, e.main.Unauth)
	}
}

func TestBackendVerifiesTLS(t *testing.T) {
	r := teratest.StartRedis(t)
	r.Set(opentera.ServiceTokenKey, secret)
	m := teratest.StartMainServer(t, serviceUUID, secret)
	port := m.Listener.Addr().(*net.TCPAddr).Port
	for _, verify := range []bool{true, false} {
		b := opentera.NewBackend(opentera.BackendConfig{Host: "127.0.0.1", Port: port, VerifyTLS: verify,
			Tokens: opentera.NewServiceToken(r.Client, serviceUUID)})
		info, err := b.Participant(context.Background(), partP)
		switch {
		case verify && (err == nil || !strings.Contains(err.Error(), "certificate")):
			t.Errorf("verify_tls on, self-signed certificate: err = %v", err)
		case !verify && (err != nil || !strings.Contains(string(info), partP)):
			t.Errorf("verify_tls off: %s, %v", info, err)
		}
	}
}

func TestParticipantInfo(t *testing.T) {
	e := newEnv(t, envOpts{backend: true})
	r, err := e.rpc.Call(context.Background(), serviceKey, "participant_info", 5*time.Second, partP)
	if err != nil || r.Status != "OK" || !strings.Contains(string(r.ReturnValue), `"participant_uuid":"`+partP+`"`) {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestRestartRestoresSessions: the runtime state stays in the local store:
// after a restart the session runs again on its port with its old links.
func TestRestartRestoresSessions(t *testing.T) {
	e := newEnv(t, envOpts{backend: true})
	s := e.start([]string{userA}, []string{partP}, nil)
	take(t, e, 3)
	e.close()
	e.open()
	vs := e.running()
	if len(vs) != 1 || vs[0].ID != 1 || vs[0].Port != s.Port {
		t.Fatalf("restored %+v", vs)
	}
	if code := get(t, s.link(t, partP)); code != 200 {
		t.Fatalf("old link after the restart: %d", code)
	}
	e.events.Quiet(t, 200*time.Millisecond) // no new invitations
	if r := e.manage(map[string]any{"action": "stop", "id_session": 1}); r.Status != "stopped" {
		t.Fatalf("stop: %+v", r)
	}
	if st, _, _, _, _ := e.main.Session(1); st != 2 {
		t.Fatalf("status %d", st)
	}
}

func TestLoadServiceInfo(t *testing.T) {
	r := teratest.StartRedis(t)
	ctx := context.Background()
	if _, err := opentera.LoadServiceInfo(ctx, r.Client, serviceKey); !errors.Is(err, opentera.ErrNoServiceInfo) ||
		!strings.Contains(err.Error(), "service.VideoRehabService") {
		t.Fatalf("missing key: %v", err)
	}
	r.Set("service."+serviceKey, `{"service_key": "VideoRehabService"}`)
	if _, err := opentera.LoadServiceInfo(ctx, r.Client, serviceKey); !errors.Is(err, opentera.ErrNoServiceInfo) {
		t.Fatalf("no uuid: %v", err)
	}
	r.SetService(serviceKey, serviceUUID, "10.0.0.5", 4071)
	info, err := opentera.LoadServiceInfo(ctx, r.Client, serviceKey)
	if err != nil || *info != (opentera.ServiceInfo{UUID: serviceUUID, Key: serviceKey, Hostname: "10.0.0.5", Port: 4071}) {
		t.Fatalf("%+v %v", info, err)
	}
	r.Kill()
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := opentera.LoadServiceInfo(ctx, r.Client, serviceKey); err == nil || !strings.Contains(err.Error(), "service.VideoRehabService") {
		t.Fatalf("redis down: %v", err)
	}
}

// TestCreatorFromMainServer: the main server sends id_creator_user, not the
// creator's uuid; it comes from the database, and its disconnection stops
// the session.
func TestCreatorFromMainServer(t *testing.T) {
	e := newEnv(t, envOpts{backend: true})
	r := e.manage(map[string]any{"action": "start", "id_service": 3, "id_session": 0, "id_session_type": 1, "id_creator_user": 1,
		"session_users": []string{userA}, "session_participants": []string{partP}, "session_devices": []string{}})
	if s := r.session(t); r.Status != "started" || s.CreatorUUID != userA {
		t.Fatalf("%+v", r)
	}
	take(t, e, 3)
	e.announce(&pb.UserEvent{UserUuid: userA, Type: pb.UserEvent_USER_DISCONNECTED})
	take(t, e, 3) // StopSessionEvent to both members, and the copy
	if st, _, _, _, _ := e.main.Session(1); st != 2 || len(e.running()) != 0 {
		t.Fatalf("status %d, running %d", st, len(e.running()))
	}
}

// TestSessionTypeConfig: a new session takes its type's configuration
// from the main server (media_mode in it picks the media path; see
// internal/endpoint), keeps it across a restart of the session, and a type
// without a JSON configuration gives none.
func TestSessionTypeConfig(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{"media mode", `{"media_mode":"sfu"}`, `{"media_mode":"sfu"}`},
		{"in a section", `{"general":{"media_mode":"auto"}}`, `{"general":{"media_mode":"auto"}}`},
		{"empty", "", ""},
		{"not JSON", "recordable", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{backend: true})
			e.main.SetTypeConfig(1, tc.config)
			s := e.start([]string{userA}, []string{partP}, nil)
			rec, err := e.bolt.Get(context.Background(), s.ID)
			if err != nil || string(rec.TypeConfig) != tc.want {
				t.Fatalf("type config %q (%v), want %q", rec.TypeConfig, err, tc.want)
			}
			e.manage(map[string]any{"action": "stop", "id_session": s.ID})
			e.main.SetTypeConfig(1, `{"media_mode":"mesh"}`) // changed since: the session keeps what it started with
			if r := e.manage(map[string]any{"action": "start", "id_service": 3, "id_session": s.ID, "id_session_type": 1,
				"session_users": []string{userA}, "session_participants": []string{partP}, "session_devices": []string{}}); r.Status != "started" {
				t.Fatalf("restart: %+v", r)
			}
			if rec, err := e.bolt.Get(context.Background(), s.ID); err != nil || string(rec.TypeConfig) != tc.want {
				t.Fatalf("after a restart: type config %q (%v), want %q", rec.TypeConfig, err, tc.want)
			}
		})
	}
}
