package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
)

// The bad-input catalogue (issue 12, "beyond the list"): hostile inputs
// against every interface of a real server, each with the documented
// answer, and after each, proof that nothing else changed: the sessions
// are the same, the peer already connected is still connected and still
// hears the session, and goroutines come back to where they were.

// hostileHTTP is one request and its documented answer.
type hostileHTTP struct {
	name    string
	door    string // "api" (service port) or "gw" (gateway)
	method  string
	path    string // {port} is the running session's port, {ukey} its users key
	host    string // "" = the listener's address
	auth    string // "" = none; "key" = the right API key
	body    string
	length  int64 // > 0: announced Content-Length (body may be shorter)
	status  int
	contain string // in the answer's body
}

const uuidA = "aaaaaaaa-0000-4000-8000-00000000000a"

func manageBodyRaw(fields string) string {
	return `{"session_manage":{` + fields + `}}`
}

func hostileHTTPCases() []hostileHTTP {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	many := `"` + strings.TrimSuffix(strings.Repeat(uuidA+`","`, 257), `","`) + `"`
	const mgr = "/api/sessions/manager"
	post := func(name, body string, status int, contain string) hostileHTTP {
		return hostileHTTP{name: name, door: "api", method: "POST", path: mgr, auth: "key", body: body, status: status, contain: contain}
	}
	return []hostileHTTP{
		// The API: keys.
		{name: "no key", door: "api", method: "POST", path: mgr, body: manageBodyRaw(`"action":"start"`), status: 401, contain: "missing or wrong API key"},
		{name: "basic auth", door: "api", method: "GET", path: "/api/sessions", auth: "Basic x", status: 401, contain: "missing or wrong API key"},
		{name: "empty bearer", door: "api", method: "GET", path: "/api/sessions", auth: "Bearer ", status: 401, contain: "missing or wrong API key"},
		{name: "wrong key", door: "api", method: "GET", path: "/api/sessions", auth: "Bearer " + strings.Repeat("x", 40), status: 401, contain: "missing or wrong API key"},
		{name: "key with a trailing space", door: "api", method: "GET", path: "/api/sessions/1", auth: "Bearer " + testKey + " x", status: 401, contain: "missing or wrong API key"},
		{name: "key twice", door: "api", method: "GET", path: "/api/sessions/1", auth: "Bearer " + testKey + testKey, status: 401, contain: "missing or wrong API key"},
		// The API: session_manage bodies.
		post("not JSON", `{`, 400, "malformed JSON"),
		post("an array", `[]`, 400, "malformed JSON"),
		post("a string", `"start"`, 400, "malformed JSON"),
		post("trailing data", manageBodyRaw(`"action":"start"`)+` x`, 400, "trailing"),
		post("no session_manage", `{"action":"start"}`, 400, "missing session_manage"),
		post("null session_manage", `{"session_manage":null}`, 400, "missing session_manage"),
		post("session_manage a list", `{"session_manage":[]}`, 400, "session_manage"),
		post("no action", manageBodyRaw(``), 400, "missing action"),
		post("action a number", manageBodyRaw(`"action":5`), 400, "action: must be a string"),
		post("unknown action", manageBodyRaw(`"action":"explode"`), 400, "unknown action"),
		post("huge action", manageBodyRaw(`"action":"`+strings.Repeat("x", 10000)+`"`), 400, "unknown action"),
		post("id a string", manageBodyRaw(`"action":"stop","id_session":"1"`), 400, "id_session: must be an integer"),
		post("id negative", manageBodyRaw(`"action":"stop","id_session":-1`), 400, "id_session: must not be negative"),
		post("id a fraction", manageBodyRaw(`"action":"stop","id_session":1.5`), 400, "id_session"),
		post("id too big", manageBodyRaw(`"action":"stop","id_session":1e40`), 400, "id_session"),
		post("stop without id", manageBodyRaw(`"action":"stop"`), 400, "id_session: required"),
		post("stop unknown", manageBodyRaw(`"action":"stop","id_session":999999`), 404, ""),
		post("invite unknown", manageBodyRaw(`"action":"invite","id_session":999999,"session_users":[]`), 404, ""),
		post("bad session_uuid", manageBodyRaw(`"action":"stop","session_uuid":"zz"`), 400, "session_uuid: not a UUID"),
		post("users a string", manageBodyRaw(`"action":"start","session_users":"`+uuidA+`"`), 400, "session_users: must be a list"),
		post("users with a number", manageBodyRaw(`"action":"start","session_users":[1]`), 400, "session_users"),
		post("users not uuids", manageBodyRaw(`"action":"start","session_participants":["x"]`), 400, "session_participants[0]: not a UUID"),
		post("257 users", manageBodyRaw(`"action":"start","session_users":[`+many+`]`), 400, "session_users: at most 256"),
		post("name too long", manageBodyRaw(`"action":"start","session_name":"`+strings.Repeat("n", 201)+`"`), 400, "session_name: at most 200"),
		post("name a number", manageBodyRaw(`"action":"start","session_name":5`), 400, "session_name: must be a string"),
		post("title with a newline", manageBodyRaw(`"action":"start","session_name":"a\nb"`), 400, "session_name: control characters are not allowed"),
		post("invitee name with a NUL", manageBodyRaw(`"action":"start","session_participants":["bbbbbbbb-0000-4000-8000-000000000002"],"session_invitees":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000002","name":"a\u0000b"}]`), 400, "session_invitees[0].name: control characters are not allowed"),
		post("invitee name with a bidi override", manageBodyRaw(`"action":"start","session_participants":["bbbbbbbb-0000-4000-8000-000000000002"],"session_invitees":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000002","name":"a\u202eb"}]`), 400, "session_invitees[0].name: control characters are not allowed"),
		post("invitee name too long", manageBodyRaw(`"action":"start","session_participants":["bbbbbbbb-0000-4000-8000-000000000002"],"session_invitees":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000002","name":"`+strings.Repeat("n", 65)+`"}]`), 400, "session_invitees[0].name: at most 64"),
		post("invitee name invalid UTF-8", manageBodyRaw(`"action":"start","session_participants":["bbbbbbbb-0000-4000-8000-000000000002"],"session_invitees":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000002","name":"caf`+"\xe9"+`"}]`), 400, "not valid UTF-8"),
		post("invitee without a name", manageBodyRaw(`"action":"start","session_participants":["bbbbbbbb-0000-4000-8000-000000000002"],"session_invitees":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000002","lang":"fr"}]`), 400, "session_invitees[0].name: required"),
		post("invitee language not a tag", manageBodyRaw(`"action":"start","session_participants":["bbbbbbbb-0000-4000-8000-000000000002"],"session_invitees":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000002","name":"A","lang":"../etc"}]`), 400, "session_invitees[0].lang: not a language tag"),
		post("invitees not a list", manageBodyRaw(`"action":"start","session_invitees":{}`), 400, "session_invitees"),
		post("invitees on stop", manageBodyRaw(`"action":"stop","id_session":1,"session_invitees":[]`), 400, "session_invitees: only for start and invite"),
		post("name invalid UTF-8", manageBodyRaw("\"action\":\"start\",\"session_name\":\"caf\xe9\""), 400, "session_name: not valid UTF-8"),
		post("name lone surrogate", manageBodyRaw(`"action":"start","session_name":"\ud800"`), 400, "session_name: not valid UTF-8"),
		post("parameters 5000 deep", manageBodyRaw(`"action":"start","parameters":`+nest(5000)), 400, "parameters: nested deeper than 32"),
		post("parameters 100 KB", manageBodyRaw(`"action":"start","parameters":"`+strings.Repeat("p", 100<<10)+`"`), 400, "parameters: at most 65536 bytes"),
		post("unknown field 1000 deep", manageBodyRaw(`"action":"start","x":`+nest(1000)), 400, "x: nested deeper"),
		post("creator not a uuid", manageBodyRaw(`"action":"start","session_creator_user_uuid":"me"`), 400, "session_creator_user_uuid: not a UUID"),
		post("invite_reply without parameters", manageBodyRaw(`"action":"invite_reply","id_session":1`), 400, "reply_code"),
		post("invite_reply bad code", manageBodyRaw(`"action":"invite_reply","id_session":1,"parameters":{"reply_code":9,"user_uuid":"`+uuidA+`"}`), 400, "reply_code: must be 1 to 4"),
		post("invite_reply two uuids", manageBodyRaw(`"action":"invite_reply","id_session":1,"parameters":{"reply_code":1,"user_uuid":"`+uuidA+`","device_uuid":"`+uuidA+`"}`), 400, "give only one"),
		post("invite_reply no uuid", manageBodyRaw(`"action":"invite_reply","id_session":1,"parameters":{"reply_code":1}`), 400, "one of user_uuid"),
		post("body over 1 MiB", manageBodyRaw(`"action":"start","x":"`+strings.Repeat("b", 1<<20)+`"`), 413, ""),
		{name: "announced 5 MiB", door: "api", method: "POST", path: mgr, auth: "key", body: "{}", length: 5 << 20, status: 413, contain: "request body over"},
		// The API: other routes.
		{name: "status filter bogus", door: "api", method: "GET", path: "/api/sessions?status=bogus", auth: "key", status: 400, contain: "status: must be running or all"},
		{name: "session id letters", door: "api", method: "GET", path: "/api/sessions/abc", auth: "key", status: 400, contain: "session id"},
		{name: "session id negative", door: "api", method: "GET", path: "/api/sessions/-1", auth: "key", status: 400, contain: "session id"},
		{name: "session id overflow", door: "api", method: "GET", path: "/api/sessions/99999999999999999999", auth: "key", status: 400, contain: "session id"},
		{name: "session unknown", door: "api", method: "GET", path: "/api/sessions/999999", auth: "key", status: 404, contain: ""},
		{name: "no such route", door: "api", method: "GET", path: "/api/nothing", auth: "key", status: 404, contain: "no such API route"},
		{name: "DELETE sessions", door: "api", method: "DELETE", path: "/api/sessions", auth: "key", status: 404, contain: "no such API route"},
		{name: "backup without key", door: "api", method: "GET", path: "/api/store/backup", status: 401, contain: "missing or wrong API key"},
		{name: "encoded traversal", door: "api", method: "GET", path: "/static/..%2f..%2fetc%2fpasswd", status: 404, contain: ""},
		// The gateway.
		{name: "foreign Host", door: "gw", method: "GET", path: "/rehab/", host: "evil.example", status: 421, contain: "misdirected"},
		{name: "foreign Host, API", door: "gw", method: "POST", path: "/rehab" + mgr, host: "evil.example", auth: "key", body: manageBodyRaw(`"action":"start"`), status: 421, contain: "misdirected"},
		{name: "foreign Host, EHRC", door: "gw", method: "GET", path: "/create-room", host: "evil.example:40075", status: 421, contain: "misdirected"},
		{name: "foreign Host, session page", door: "gw", method: "GET", path: "/webrtc/{port}/users?key={ukey}", host: "rebind.example", status: 421, contain: "misdirected"},
		{name: "metrics hidden", door: "gw", method: "GET", path: "/rehab/metrics", status: 404, contain: ""},
		{name: "API without key", door: "gw", method: "GET", path: "/rehab/api/sessions", status: 401, contain: "missing or wrong API key"},
		{name: "port not a number", door: "gw", method: "GET", path: "/webrtc/x/users", status: 404, contain: ""},
		{name: "port out of range", door: "gw", method: "GET", path: "/webrtc/99999999/users", status: 404, contain: ""},
		{name: "port negative", door: "gw", method: "GET", path: "/webrtc/-1/users", status: 404, contain: ""},
		{name: "no session on the port", door: "gw", method: "GET", path: "/webrtc/1/users?key=k", status: 403, contain: ""},
		{name: "wrong page key", door: "gw", method: "GET", path: "/webrtc/{port}/users?key=" + strings.Repeat("k", 43), status: 403, contain: ""},
		{name: "users key on the participants page", door: "gw", method: "GET", path: "/webrtc/{port}/participants?key={ukey}", status: 403, contain: ""},
		{name: "no key on the page", door: "gw", method: "GET", path: "/webrtc/{port}/users", status: 403, contain: ""},
		{name: "status with a wrong key", door: "gw", method: "GET", path: "/webrtc/{port}/status?key=nope", status: 403, contain: "Invalid or expired key"},
		{name: "static traversal", door: "gw", method: "GET", path: "/webrtc/{port}/static/../../../etc/passwd", status: 404, contain: ""},
		{name: "unknown top path", door: "gw", method: "GET", path: "/etc/passwd", status: 404, contain: ""},
		{name: "websocket without upgrade", door: "gw", method: "GET", path: "/websocket/{port}/", status: 426, contain: ""},
		// EHRC REST.
		{name: "create-namespace without key", door: "gw", method: "GET", path: "/api/create-namespace?namespaceId=doc", status: 401, contain: "API key"},
		{name: "create-namespace bad id", door: "gw", method: "GET", path: "/api/create-namespace?namespaceId=a%2Fb", auth: "key", status: 400, contain: "namespaceId must be"},
		{name: "create-namespace twice in the URL", door: "gw", method: "GET", path: "/create-namespace?namespaceId=a&namespaceId=b", auth: "key", status: 400, contain: "more than once"},
		{name: "remove-namespace unknown", door: "gw", method: "GET", path: "/remove-namespace?namespaceId=nobody", auth: "key", status: 404, contain: "No namespace"},
		{name: "join-room unknown", door: "gw", method: "GET", path: "/join-room?roomId=4b8e2a50-0d3c-4f6e-9a1b-2c3d4e5f6a7b", status: 400, contain: "No Room with such an ID"},
		{name: "join-room no id", door: "gw", method: "GET", path: "/join-room", status: 400, contain: "roomId is required"},
		{name: "check-availability no id", door: "gw", method: "GET", path: "/check-availability", status: 400, contain: "namespaceId is required"},
		{name: "native socket of no namespace", door: "gw", method: "GET", path: "/ehrc/ws/nobody", status: 404, contain: ""},
		{name: "create-room via POST", door: "gw", method: "POST", path: "/create-room", body: "x", status: 405, contain: ""},
		{name: "namespace id undefined", door: "gw", method: "GET", path: "/check-availability?namespaceId=undefined", status: 400, contain: "did not set it"},
		{name: "namespace id 65 chars", door: "gw", method: "GET", path: "/api/create-namespace?namespaceId=" + strings.Repeat("a", 65), auth: "key", status: 400, contain: "namespaceId must be"},
		{name: "room id a script", door: "gw", method: "GET", path: "/join-room?roomId=%3Cscript%3E", status: 400, contain: "No Room with such an ID"},
		// Engine.IO / Socket.IO (polling, over the gateway).
		{name: "engine.io v3", door: "gw", method: "GET", path: "/socket.io/?EIO=3&transport=polling", status: 400, contain: "Unsupported protocol version"},
		{name: "engine.io no version", door: "gw", method: "GET", path: "/socket.io/?transport=polling", status: 400, contain: ""},
		{name: "engine.io unknown transport", door: "gw", method: "GET", path: "/socket.io/?EIO=4&transport=carrier-pigeon", status: 400, contain: "Transport unknown"},
		{name: "engine.io unknown sid", door: "gw", method: "GET", path: "/socket.io/?EIO=4&transport=polling&sid=nope", status: 400, contain: "Session ID unknown"},
		{name: "engine.io POST unknown sid", door: "gw", method: "POST", path: "/socket.io/?EIO=4&transport=polling&sid=nope", body: "4hello", status: 400, contain: "Session ID unknown"},
		{name: "engine.io handshake by POST", door: "gw", method: "POST", path: "/socket.io/?EIO=4&transport=polling", body: "0", status: 400, contain: "Bad handshake method"},
		{name: "engine.io websocket without upgrade", door: "gw", method: "GET", path: "/socket.io/?EIO=4&transport=websocket", status: 400, contain: ""},
		{name: "engine.io announced 5 MiB", door: "gw", method: "POST", path: "/socket.io/?EIO=4&transport=polling&sid=nope", body: "4", length: 5 << 20, status: 413, contain: "request body over"},
		{name: "engine.io foreign Host", door: "gw", method: "GET", path: "/socket.io/?EIO=4&transport=polling", host: "evil.example", status: 421, contain: "misdirected"},
	}
}

// catEnv is the server under attack and what must not change.
type catEnv struct {
	t        *testing.T
	ts       *testServer
	port     int
	usersKey string
	watcher  *wsClient // a participant joined before the attacks
	other    string    // the participant link of a second invitee, to prove the watcher still hears
	otherID  string
	rogue    string // the participant link of an invitee who misbehaves once joined
	rogueID  string
	sessions string // GET /api/sessions before the attacks
}

func newCatEnv(t *testing.T) *catEnv {
	ts := startServer(t, testConfig(t, t.TempDir(), 4))
	const u, p, q, x = "aaaaaaaa-0000-4000-8000-0000000000c1", "aaaaaaaa-0000-4000-8000-0000000000c2",
		"aaaaaaaa-0000-4000-8000-0000000000c3", "aaaaaaaa-0000-4000-8000-0000000000c4"
	code, r := ts.manage(map[string]any{"action": "start", "session_users": []string{u}, "session_participants": []string{p, q, x}})
	if code != 200 {
		t.Fatalf("start: %d %+v", code, r)
	}
	e := &catEnv{t: t, ts: ts, port: r.Session.Port, usersKey: keyOf(r.Session.URLUsers)}
	e.watcher, _ = join(t, ts.gateway, r.Session.link(t, p), p, "watcher")
	e.other = r.Session.link(t, q)
	e.otherID = q
	e.rogue, e.rogueID = r.Session.link(t, x), x
	e.sessions = e.listSessions()
	return e
}

func (e *catEnv) listSessions() string {
	var v any
	if code := e.ts.api("GET", "/api/sessions", nil, &v); code != 200 {
		e.t.Fatalf("list: %d", code)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// unchanged checks that the attack changed nothing: the same sessions,
// and the watcher still hears a newcomer join.
func (e *catEnv) unchanged(t *testing.T, name string) {
	t.Helper()
	if got := e.listSessions(); got != e.sessions {
		t.Fatalf("%s changed the sessions:\nbefore %s\nafter  %s", name, e.sessions, got)
	}
	select {
	case <-e.watcher.done:
		t.Fatalf("%s disconnected the watcher: %v", name, e.watcher.err)
	default:
	}
}

// stillHears: a newcomer joins and the watcher is told.
func (e *catEnv) stillHears() {
	e.t.Helper()
	w, _ := join(e.t, e.ts.gateway, e.other, e.otherID, "newcomer")
	e.watcher.expect("peer-joined")
	w.c.Close(websocket.StatusNormalClosure, "")
	e.watcher.expect("peer-left")
}

func (e *catEnv) do(t *testing.T, c hostileHTTP) (int, string) {
	base := e.ts.service
	if c.door == "gw" {
		base = e.ts.gateway
	}
	path := strings.ReplaceAll(c.path, "{port}", fmt.Sprint(e.port))
	path = strings.ReplaceAll(path, "{ukey}", e.usersKey)
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+path, body)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	switch {
	case c.auth == "key":
		req.Header.Set("Authorization", "Bearer "+testKey)
	case c.auth != "":
		req.Header["Authorization"] = []string{c.auth}
	}
	if c.length > 0 {
		req.ContentLength = c.length
		req.Body = io.NopCloser(io.MultiReader(strings.NewReader(c.body), zeros{}))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// zeros is an endless body, for announced lengths the server must refuse
// before reading.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// baseline is what the process holds before the attacks.
type baseline struct {
	goroutines int
	heap       uint64 // live heap after a GC
}

func takeBaseline() baseline {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return baseline{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc}
}

// backToBaseline polls until goroutines are back (±5) and the live heap
// is within 16 MiB of the baseline: nothing an attack sent is kept.
func backToBaseline(t *testing.T, b baseline) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := takeBaseline()
		if now.goroutines <= b.goroutines+5 && now.heap <= b.heap+16<<20 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("not back to the baseline: goroutines %d (was %d), live heap %d kB (was %d kB)\n%s",
				now.goroutines, b.goroutines, now.heap>>10, b.heap>>10, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBadInputCatalogueHTTP(t *testing.T) {
	e := newCatEnv(t)
	http.DefaultClient.CloseIdleConnections()
	base := takeBaseline()
	cases := hostileHTTPCases()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.do(t, c)
			if code != c.status || !strings.Contains(body, c.contain) {
				t.Errorf("%s %s: %d %.200q, want %d containing %q", c.method, c.path, code, body, c.status, c.contain)
			}
			if code == 500 || strings.Contains(body, testKey) || strings.Contains(body, e.usersKey) {
				t.Errorf("internal error or a key in the answer: %d %.200q", code, body)
			}
			e.unchanged(t, c.name)
		})
	}
	e.stillHears()
	http.DefaultClient.CloseIdleConnections()
	backToBaseline(t, base)
	t.Logf("%d hostile HTTP inputs", len(cases))
}

// hostileWS is one WebSocket misbehaviour, the error it earns and the
// close code. With open, the connection stays open after the error (as
// documented) until a join with a wrong key, which closes it with 4001.
type hostileWS struct {
	name  string
	act   func(ctx context.Context, c *websocket.Conn, e *catEnv) error
	code  websocket.StatusCode
	reply string // an error code the server sends first, "" = none checked
	open  bool
}

func hostileWSCases() []hostileWS {
	text := func(s string) func(ctx context.Context, c *websocket.Conn, e *catEnv) error {
		return func(ctx context.Context, c *websocket.Conn, e *catEnv) error {
			return c.Write(ctx, websocket.MessageText, []byte(s))
		}
	}
	joinWith := func(key func(e *catEnv) string, uuid string) func(ctx context.Context, c *websocket.Conn, e *catEnv) error {
		return func(ctx context.Context, c *websocket.Conn, e *catEnv) error {
			b, _ := json.Marshal(map[string]any{"type": "join", "key": key(e), "uuid": uuid, "name": "x"})
			return c.Write(ctx, websocket.MessageText, b)
		}
	}
	return []hostileWS{
		{"chat before join", text(`{"type":"chat","text":"hi"}`), 4009, "protocol", false},
		{"signal before join", text(`{"type":"signal","to":"x","data":{}}`), 4009, "protocol", false},
		{"unknown type before join", text(`{"type":"explode"}`), 4009, "protocol", false},
		{"garbage before join", text(`not json`), 4001, "bad-message", true},
		{"empty object", text(`{}`), 4001, "", true},
		{"join with a wrong key", joinWith(func(*catEnv) string { return strings.Repeat("k", 43) }, ""), 4001, "unauthorized", false},
		{"join with no key", text(`{"type":"join"}`), 4001, "missing-field", true},
		{"join with an empty key", text(`{"type":"join","key":""}`), 4001, "missing-field", true},
		{"join with a key of a number", text(`{"type":"join","key":5}`), 4001, "bad-message", true},
		{"users key, uuid not invited", joinWith(func(e *catEnv) string { return e.usersKey }, uuidA), 4001, "unauthorized", false},
		{"users key, no uuid", joinWith(func(e *catEnv) string { return e.usersKey }, ""), 4001, "unauthorized", false},
		{"binary frame", func(ctx context.Context, c *websocket.Conn, e *catEnv) error {
			return c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
		}, websocket.StatusUnsupportedData, "", false},
		{"frame over 64 KiB", text(`{"type":"join","key":"` + strings.Repeat("k", 70<<10) + `"}`), websocket.StatusMessageTooBig, "", false},
	}
}

func TestBadInputCatalogueWebSocket(t *testing.T) {
	e := newCatEnv(t)
	http.DefaultClient.CloseIdleConnections()
	base := takeBaseline()
	for _, c := range hostileWSCases() {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			url := "ws" + strings.TrimPrefix(e.ts.gateway, "http") + fmt.Sprintf("/websocket/%d/", e.port)
			conn, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			if err := c.act(ctx, conn, e); err != nil {
				t.Fatal(err)
			}
			var first []byte
			if c.open { // the error, then a wrong key to end it
				_, m, err := conn.Read(ctx)
				if err != nil {
					t.Fatalf("closed (%v); the connection should stay open", err)
				}
				first = m
				bad, _ := json.Marshal(map[string]any{"type": "join", "key": strings.Repeat("w", 43)})
				if err := conn.Write(ctx, websocket.MessageText, bad); err != nil {
					t.Fatal(err)
				}
			}
			for { // read until the close, keeping the first message
				_, m, err := conn.Read(ctx)
				if err != nil {
					if got := websocket.CloseStatus(err); got != c.code {
						t.Fatalf("closed with %d (%v), want %d", got, err, c.code)
					}
					break
				}
				if first == nil {
					first = m
				}
			}
			if c.reply != "" && !bytes.Contains(first, []byte(`"code":"`+c.reply+`"`)) {
				t.Fatalf("first message %.200q, want error code %q", first, c.reply)
			}
			e.unchanged(t, c.name)
		})
	}
	e.stillHears()
	backToBaseline(t, base)
}

// TestBadInputCatalogueJoined: a participant, once joined, sends hostile
// messages; each earns its documented error, the connection stays open,
// and nothing reaches anyone else.
func TestBadInputCatalogueJoined(t *testing.T) {
	e := newCatEnv(t)
	rogue, _ := join(t, e.ts.gateway, e.rogue, e.rogueID, "rogue")
	e.watcher.expect("peer-joined")
	e.sessions = e.listSessions() // with the rogue among the peers
	nest := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	for _, c := range []struct{ name, msg, code string }{
		{"not JSON", `not json`, "bad-message"},
		{"an array", `[]`, "bad-message"},
		{"no type", `{}`, "bad-message"},
		{"type a number", `{"type":5}`, "bad-message"},
		{"unknown type", `{"type":"explode"}`, "unknown-type"},
		{"signal without to", `{"type":"signal","data":{}}`, "missing-field"},
		{"signal to a number", `{"type":"signal","to":5,"data":{}}`, "bad-message"},
		{"signal to nobody", `{"type":"signal","to":"nobody000000","data":{}}`, "unknown-peer"},
		{"message without topic", `{"type":"message","data":{}}`, "missing-field"},
		{"unknown topic", `{"type":"message","topic":"nope","data":{}}`, "unknown-topic"},
		{"unknown control topic", `{"type":"message","topic":"control.selfdestruct","data":{}}`, "unknown-topic"},
		{"control from a participant", `{"type":"message","topic":"control.mute","data":{"audio":true}}`, "forbidden"},
		{"chat to nobody", `{"type":"message","to":"nobody000000","topic":"chat","data":{}}`, "unknown-peer"},
		{"a second join", `{"type":"join","key":"` + strings.Repeat("k", 43) + `"}`, "already-joined"},
		{"nested 1000 deep", `{"type":"message","topic":"chat","data":` + nest + `}`, "bad-message"},
		{"invalid UTF-8", "{\"type\":\"message\",\"topic\":\"chat\",\"data\":\"\xff\"}", "bad-message"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := rogue.c.Write(ctx, websocket.MessageText, []byte(c.msg)); err != nil {
				t.Fatal(err)
			}
			m := rogue.expect("error")
			if m["code"] != c.code {
				t.Fatalf("error %v, want code %q", m, c.code)
			}
			e.unchanged(t, c.name)
			select {
			case <-rogue.done:
				t.Fatalf("the connection closed (%v); it should stay open", rogue.err)
			default:
			}
		})
	}
	rogue.c.Close(websocket.StatusNormalClosure, "")
	e.watcher.expect("peer-left")
	select { // nothing the rogue sent reached the watcher
	case m := <-e.watcher.msgs:
		t.Fatalf("the watcher received %v", m)
	case <-time.After(200 * time.Millisecond):
	}
	e.stillHears()
}

// TestBadInputCatalogueConfig: hostile configuration files fail config
// check with a line naming the file and the field, never a panic.
func TestBadInputCatalogueConfig(t *testing.T) {
	for _, c := range []struct{ name, content, want string }{
		{"empty", ``, "file is empty"},
		{"not JSON", `{`, "invalid JSON"},
		{"an array", `[]`, "top level: must be a JSON object"},
		{"unknown key", `{"Servce": {}}`, `unknown field "Servce"`},
		{"unknown nested key", `{"Service": {"prot": 1}}`, `unknown field "Service.prot"`},
		{"key in the wrong case", `{"Service": {"Port": 1}}`, `unknown field "Service.Port" (did you mean "port"?)`},
		{"duplicate section", `{"Service": {}, "Service": {}}`, "Service: set more than once"},
		{"duplicate key", `{"WebRTC": {"max_sessions": 5, "max_sessions": 6}}`, "WebRTC.max_sessions: set more than once"},
		{"50 KB name", `{"Service": {"name": "` + strings.Repeat("n", 50<<10) + `"}}`, "Service.name: at most 4096 bytes"},
		{"2 MB file", `{"Service": {"name": "` + strings.Repeat("n", 2<<20) + `"}}`, "file is larger than"},
		{"port a string", `{"Service": {"port": "80"}}`, "Service.port: must be a JSON integer"},
		{"port out of range", `{"Service": {"port": 70000}}`, "Service.port: must be between 1 and 65535"},
		{"pool past 65535", `{"WebRTC": {"local_base_port": 65530, "max_sessions": 10}}`, "go past 65535"},
		{"short API key", `{"RehabRTC": {"api_keys": ["short"]}}`, "RehabRTC.api_keys[0]: must be at least 32"},
		{"host with a scheme", `{"WebRTC": {"hostname": "https://x"}}`, "WebRTC.hostname: must be a host name"},
		{"gateway host with a port", `{"RehabRTC": {"gateway": {"hosts": ["a:1"]}}}`, "RehabRTC.gateway.hosts[0]: must not include a port"},
		{"session_bind not an IP", `{"RehabRTC": {"session_bind": "localhost"}}`, "RehabRTC.session_bind"},
		{"deep nesting", `{"Service": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "config "},
		{"invalid UTF-8", "{\"Service\": {\"name\": \"\xff\"}}", "config "},
		{"NUL bytes", "\x00\x00\x00", "invalid JSON"},
		{"max_sessions over the bound", `{"WebRTC": {"max_sessions": 10001}}`, "WebRTC.max_sessions: must be between 1 and 10000"},
		{"log level unknown", `{"RehabRTC": {"log_level": "verbose"}}`, "RehabRTC.log_level: must be one of"},
		{"ICE server without URL", `{"RehabRTC": {"ice_servers": [{}]}}`, "RehabRTC.ice_servers[0].urls: must list at least one URL"},
		{"TURN without credential", `{"RehabRTC": {"ice_servers": [{"urls": "turn:t"}]}}`, "turn: and turns: URLs need username and credential"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.json")
			os.WriteFile(path, []byte(c.content), 0o600)
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"config", "check", "--config", path}, &stdout, &stderr)
			if err == nil && c.name == "invalid UTF-8" {
				return // a name with U+FFFD is a name; documented as accepted
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("config check: %v, want an error naming %s and containing %q", err, path, c.want)
			}
		})
	}
}

// TestBadInputCatalogueStore: hostile store files make store check (and
// serve) answer one line naming the file, never a panic. Pages of a real
// store are damaged in internal/store/boltstore; here are whole files.
func TestBadInputCatalogueStore(t *testing.T) {
	for _, c := range []struct {
		name    string
		content []byte
		want    string // "" = accepted
	}{
		{"text", []byte("sessions: none\n"), "is damaged"},
		{"one byte", []byte{0}, "is damaged"},
		{"a page of zeros", make([]byte, 4096), "is damaged"},
		{"four pages of zeros", make([]byte, 4*4096), "is damaged"},
		{"a page of 0xff", bytes.Repeat([]byte{0xff}, 4096), "is damaged"},
		{"JSON", []byte(`{"sessions":[]}`), "is damaged"},
		{"a gzip header", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, "is damaged"},
		{"bbolt magic only", append(make([]byte, 16), 0xED, 0xDA, 0x0C, 0xED), "is damaged"},
		{"empty", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "rehabrtc.db"), c.content, 0o600)
			cfg := testConfig(t, dir, 1)
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"store", "check", "--config", writeCfg(t, cfg)}, &stdout, &stderr)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("store check: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n")):
				t.Fatalf("store check: %v, want one line containing %q", err, c.want)
			}
		})
	}
}

// TestBadInputCatalogueRedisRPC: hostile session_manage calls over
// OpenTera's Redis RPC get the same documented errors as over HTTP, and
// envelopes that are not RPC messages at all get no answer and change
// nothing; a good call still works after them. Real redis-server.
func TestBadInputCatalogueRedisRPC(t *testing.T) {
	r := teratest.StartRedis(t)
	r.Set(opentera.ServiceTokenKey, otSecret)
	m := teratest.StartMainServer(t, otServiceUUID, otSecret)
	cfg := openTeraConfig(t, r, m)
	r.SetService(cfg.Service.Name, otServiceUUID, "127.0.0.1", freePorts(t, 1))
	ts := startServer(t, cfg)
	rpc := teratest.NewRPCClient(r.Client)
	call := func(t *testing.T, method string, args ...any) map[string]any {
		t.Helper()
		env, err := rpc.Call(context.Background(), cfg.Service.Name, method, 10*time.Second, args...)
		if err != nil {
			t.Fatalf("rpc %s: %v", method, err)
		}
		var reply map[string]any
		if err := json.Unmarshal(env.ReturnValue, &reply); err != nil {
			t.Fatalf("reply %s: %v", env.ReturnValue, err)
		}
		return reply
	}
	var before any
	ts.api("GET", "/api/sessions", nil, &before)
	nest := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	for _, c := range []struct {
		name string
		arg  any
		want string // in error_text
	}{
		{"not JSON", `{`, "malformed JSON"},
		{"a number, not a string", 5, "the argument must be a JSON string"},
		{"no session_manage", `{"action":"start"}`, "missing session_manage"},
		{"unknown action", manageBodyRaw(`"action":"explode"`), "unknown action"},
		{"parameters 5000 deep", manageBodyRaw(`"action":"start","parameters":` + nest), "parameters: nested deeper than 32 levels"},
		// Invalid UTF-8 cannot travel in the protobuf string; a lone surrogate escape can.
		{"name lone surrogate", manageBodyRaw(`"action":"start","session_name":"a\udc00"`), "session_name: not valid UTF-8"},
		{"users not uuids", manageBodyRaw(`"action":"start","session_users":["me"]`), "session_users[0]: not a UUID"},
		{"stop without id", manageBodyRaw(`"action":"stop"`), "id_session: required"},
		{"parameters 100 KB", manageBodyRaw(`"action":"start","parameters":"` + strings.Repeat("p", 100<<10) + `"`), "parameters: at most 65536 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reply := call(t, "session_manage", c.arg)
			if reply["status"] != "error" || !strings.Contains(fmt.Sprint(reply["error_text"]), c.want) {
				t.Fatalf("reply %v, want an error containing %q", reply, c.want)
			}
		})
	}
	// Envelopes that are not RPC messages: no reply, nothing changes.
	for name, payload := range map[string][]byte{
		"garbage":     []byte("garbage"),
		"empty":       {},
		"JSON":        []byte(`{"method":"session_manage"}`),
		"binary junk": bytes.Repeat([]byte{0xff, 0x00, 0x12}, 1000),
	} {
		t.Run("envelope "+name, func(t *testing.T) {
			_, err := rpc.CallRaw(context.Background(), "service."+cfg.Service.Name+".rpc", "RedisRPCClient.catalogue", payload, 300*time.Millisecond)
			if err == nil {
				t.Fatal("an answer to an envelope that is not an RPC message")
			}
		})
	}
	var after any
	ts.api("GET", "/api/sessions", nil, &after)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the sessions changed:\nbefore %v\nafter  %v", before, after)
	}
	if reply := call(t, "session_manage", manageBodyRaw(`"action":"start"`)); reply["status"] != "started" {
		t.Fatalf("a good call after the attacks: %v", reply)
	}
}
