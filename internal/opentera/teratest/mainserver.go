package teratest

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MainServer fakes the service REST API of OpenTera's main server (spec
// §3.3-3.7, §4.7): sessions, session events and participants, behind the
// service JWT check. It is an HTTPS server with its own certificate.
type MainServer struct {
	*httptest.Server
	ServiceUUID string

	mu          sync.Mutex
	secret      string
	sessions    map[int64]*fakeSession
	events      map[int64][]map[string]any
	nextID      int64
	nextEvt     int64
	Requests    []Request
	Unauth      int              // 401 answers given
	Users       map[int64]Named  // id_creator_user → who, for session_creator_user(_uuid)
	typeConfigs map[int64]string // session_type_config texts by id_session_type; "" when not set
}

// SetTypeConfig sets a session type's session_type_config text.
func (m *MainServer) SetTypeConfig(id int64, config string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.typeConfigs[id] = config
}

// Named is a user as the fake knows it.
type Named struct{ UUID, Name string }

// Request is one authorised call the fake answered.
type Request struct {
	Method, Path, Query string
	Body                map[string]any
}

type fakeSession struct {
	ID                           int64
	UUID, Name, Params           string
	Type, Duration               int64
	Status                       int
	Start                        time.Time
	CreatorUser                  *int64
	Users, Participants, Devices []string
}

// StartMainServer starts the fake on a free loopback port with
// httptest's certificate; secret signs valid service tokens.
func StartMainServer(t testing.TB, serviceUUID, secret string) *MainServer {
	return StartMainServerOn(t, serviceUUID, secret, "", nil)
}

// StartMainServerOn starts the fake on addr ("": a free loopback port)
// with cert (nil: httptest's), e.g. on OpenTera's 40075, where OpenTera's
// nginx answers the main server's API.
func StartMainServerOn(t testing.TB, serviceUUID, secret, addr string, cert *tls.Certificate) *MainServer {
	t.Helper()
	m := &MainServer{ServiceUUID: serviceUUID, secret: secret, sessions: map[int64]*fakeSession{},
		events: map[int64][]map[string]any{}, Users: map[int64]Named{}, typeConfigs: map[int64]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/service/sessions", m.auth(m.postSession))
	mux.HandleFunc("GET /api/service/sessions", m.auth(m.getSession))
	mux.HandleFunc("POST /api/service/sessions/events", m.auth(m.postEvent))
	mux.HandleFunc("GET /api/service/participants", m.auth(m.getParticipant))
	mux.HandleFunc("GET /api/service/sessiontypes", m.auth(m.getSessionTypes))
	m.Server = httptest.NewUnstartedServer(mux)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			m.Server.Close()
			t.Fatalf("main server: %v", err)
		}
		m.Server.Listener.Close()
		m.Server.Listener = ln
	}
	if cert != nil {
		m.Server.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	m.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests test
	m.Server.StartTLS()
	t.Cleanup(m.Close)
	return m
}

// SessionJSON is the session as the main server's to_json() writes it
// (what OpenTera's stop answers), through a JSON round trip.
func (m *MainServer) SessionJSON(id int64) map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	b, _ := json.Marshal(m.toJSON(s, false))
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// Rotate replaces the token secret, as a main-server restart does.
func (m *MainServer) Rotate(secret string) {
	m.mu.Lock()
	m.secret = secret
	m.mu.Unlock()
}

// Calls returns the requests answered so far.
func (m *MainServer) Calls() []Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.Requests)
}

// Events returns the events stored for a session.
func (m *MainServer) Events(id int64) []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events[id])
}

// Session returns the fake's row of a session (status, duration, members).
func (m *MainServer) Session(id int64) (status int, duration int64, users, participants, devices []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return -1, 0, nil, nil, nil
	}
	return s.Status, s.Duration, slices.Clone(s.Users), slices.Clone(s.Participants), slices.Clone(s.Devices)
}

// AddSession creates session id in the fake's database, as another client
// of the main server would have, so a store can write to it.
func (m *MainServer) AddSession(id int64, typ int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &fakeSession{ID: id, UUID: fmt.Sprintf("5e551000-0000-4000-8000-%012d", id), Type: typ, Status: 1, Start: time.Now()}
	s.Name = fmt.Sprintf("Type %d [%d.%d]", typ, s.Start.Year(), id)
	m.sessions[id] = s
	m.nextID = max(m.nextID, id)
}

type handler func(w http.ResponseWriter, r *http.Request, body map[string]any) (any, int)

// auth checks "Authorization: OpenTera <jwt>": HS256 with the current
// secret and the right service_uuid, else 401.
func (m *MainServer) auth(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "OpenTera ")
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(m.secret), nil },
			jwt.WithValidMethods([]string{"HS256"}))
		if !ok || err != nil || claims["service_uuid"] != m.ServiceUUID || claims["iat"] == nil {
			m.Unauth++
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		var body map[string]any
		if r.Method == http.MethodPost {
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, "Bad JSON", http.StatusBadRequest)
				return
			}
		}
		m.Requests = append(m.Requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body})
		out, code := h(w, r, body)
		if code != http.StatusOK {
			http.Error(w, fmt.Sprint(out), code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}
}

// postSession is ServiceQuerySessions.post: id_session 0 creates (status 1,
// start now, name "<type> [<year>.<count>]"), otherwise updates; members:
// participants are added and removed to match a non-empty list, users and
// devices only added. Answers [session].
func (m *MainServer) postSession(_ http.ResponseWriter, _ *http.Request, body map[string]any) (any, int) {
	js, ok := body["session"].(map[string]any)
	if !ok {
		return "Missing session", http.StatusBadRequest
	}
	id, ok := js["id_session"].(float64)
	if !ok {
		return "Missing id_session", http.StatusBadRequest
	}
	var s *fakeSession
	if id == 0 {
		typ, ok := js["id_session_type"].(float64)
		if !ok {
			return "Missing id_session_type", http.StatusBadRequest
		}
		m.nextID++
		s = &fakeSession{ID: m.nextID, UUID: fmt.Sprintf("5e551000-0000-4000-8000-%012d", m.nextID), Type: int64(typ),
			Status: 1, Start: time.Now()}
		s.Name = fmt.Sprintf("Type %d [%d.%d]", s.Type, s.Start.Year(), m.nextID)
		if n, ok := js["session_name"].(string); ok {
			s.Name = n
		}
		if p, ok := js["session_parameters"].(string); ok {
			s.Params = p
		} else if js["session_parameters"] != nil {
			return "session_parameters: not a string", http.StatusInternalServerError // a String column
		}
		if u, ok := js["id_creator_user"].(float64); ok {
			cu := int64(u)
			s.CreatorUser = &cu
		}
		m.sessions[s.ID] = s
	} else if s = m.sessions[int64(id)]; s == nil {
		return "Forbidden", http.StatusForbidden
	}
	if v, ok := js["session_status"].(float64); ok {
		s.Status = int(v)
	}
	if v, ok := js["session_duration"].(float64); ok {
		s.Duration = int64(v)
	}
	m.updateMembers(s, js)
	return []any{m.toJSON(s, false)}, http.StatusOK
}

func (m *MainServer) updateMembers(s *fakeSession, js map[string]any) {
	if parts := strs(js["session_participants_uuids"]); len(parts) > 0 {
		s.Participants = parts // add the missing, remove the absent
	}
	for _, u := range strs(js["session_users_uuids"]) {
		if !slices.Contains(s.Users, u) {
			s.Users = append(s.Users, u)
		}
	}
	for _, u := range strs(js["session_devices_uuids"]) {
		if !slices.Contains(s.Devices, u) {
			s.Devices = append(s.Devices, u)
		}
	}
}

func (m *MainServer) getSession(_ http.ResponseWriter, r *http.Request, _ map[string]any) (any, int) {
	id, _ := strconv.ParseInt(r.URL.Query().Get("id_session"), 10, 64)
	s := m.sessions[id]
	if s == nil {
		return "Forbidden", http.StatusForbidden
	}
	return []any{m.toJSON(s, r.URL.Query().Get("with_events") == "True")}, http.StatusOK
}

// postEvent is ServiceQuerySessionEvents.post; the datetime must be what
// Python's fromisoformat reads.
func (m *MainServer) postEvent(_ http.ResponseWriter, _ *http.Request, body map[string]any) (any, int) {
	ev, ok := body["session_event"].(map[string]any)
	if !ok {
		return "Missing session_event field", http.StatusBadRequest
	}
	sid, _ := ev["id_session"].(float64)
	if _, ok := ev["id_session_event"]; !ok || m.sessions[int64(sid)] == nil {
		return "Forbidden", http.StatusForbidden
	}
	if err := checkISO(ev["session_event_datetime"]); err != nil {
		return err.Error(), http.StatusInternalServerError
	}
	m.nextEvt++
	ev = maps.Clone(ev) // the request stays as it came
	ev["id_session_event"] = float64(m.nextEvt + 100)
	m.events[int64(sid)] = append(m.events[int64(sid)], ev)
	return []any{ev}, http.StatusOK
}

func (m *MainServer) getParticipant(_ http.ResponseWriter, r *http.Request, _ map[string]any) (any, int) {
	u := r.URL.Query().Get("participant_uuid")
	return map[string]any{"participant_uuid": u, "participant_name": "Participant " + u[:8], "id_participant": 7}, http.StatusOK
}

// getSessionTypes is ServiceQuerySessionTypes with id_session_type:
// [TeraSessionType.to_json()], session_type_config a JSON text.
func (m *MainServer) getSessionTypes(_ http.ResponseWriter, r *http.Request, _ map[string]any) (any, int) {
	id, err := strconv.ParseInt(r.URL.Query().Get("id_session_type"), 10, 64)
	if err != nil {
		return "id_session_type required here", http.StatusBadRequest
	}
	return []map[string]any{{"id_session_type": id, "id_service": 1, "session_type_name": fmt.Sprintf("Type %d", id),
		"session_type_online": true, "session_type_config": m.typeConfigs[id], "session_type_color": "#00FF00",
		"session_type_category": 1}}, http.StatusOK
}

// toJSON is TeraSession.to_json(), plus session_events when asked.
func (m *MainServer) toJSON(s *fakeSession, withEvents bool) map[string]any {
	out := map[string]any{
		"id_session": s.ID, "session_uuid": s.UUID, "session_name": s.Name, "id_session_type": s.Type,
		"id_creator_user": s.CreatorUser, "id_creator_participant": nil, "id_creator_device": nil, "id_creator_service": nil,
		"session_start_datetime": s.Start.Format("2006-01-02T15:04:05.000000-07:00"),
		"session_duration":       s.Duration, "session_status": s.Status, "session_comments": nil,
		"session_parameters": nil, "session_assets_count": 0, "session_tests_count": 0,
	}
	var params any
	if json.Unmarshal([]byte(s.Params), &params) == nil {
		out["session_parameters"] = params
	} else if s.Params != "" {
		out["session_parameters"] = s.Params
	}
	out["session_users"] = members(s.Users, "user")
	out["session_participants"] = members(s.Participants, "participant")
	out["session_devices"] = members(s.Devices, "device")
	if s.CreatorUser != nil {
		who := m.Users[*s.CreatorUser]
		out["session_creator_user"], out["session_creator_user_uuid"] = who.Name, who.UUID
	}
	if withEvents {
		out["session_events"] = m.events[s.ID]
	}
	return out
}

func members(uuids []string, kind string) []map[string]any {
	out := []map[string]any{}
	for i, u := range uuids {
		out = append(out, map[string]any{"id_" + kind: i + 1, kind + "_uuid": u, kind + "_name": kind + " " + u[:8]})
	}
	return out
}

func strs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// checkISO accepts what datetime.fromisoformat (Python ≥ 3.7) reads from
// isoformat(): YYYY-MM-DD[T ]HH:MM:SS[.ffffff][±HH:MM].
func checkISO(v any) error {
	s, ok := v.(string)
	if !ok {
		return errors.New("session_event_datetime: not a string")
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000000-07:00", "2006-01-02 15:04:05.000000", "2006-01-02T15:04:05.000000"} {
		if _, err := time.Parse(layout, s); err == nil {
			return nil
		}
	}
	return fmt.Errorf("session_event_datetime %q: not isoformat", s)
}
