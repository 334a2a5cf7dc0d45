package ehrc

import (
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The REST routes answer EHRC's bodies at /api/<route> and /<route>, and
// refuse what EHRC accepted.
func TestRESTRoutes(t *testing.T) {
	for _, prefix := range []string{"/api", ""} {
		t.Run("prefix "+prefix+"/", func(t *testing.T) {
			e := newTestEnv(t, Config{})
			for _, tt := range []struct {
				name, path, auth string
				status           int
				msg              string // the "msg" of the JSON answer
			}{
				{"create without key", "/create-namespace?namespaceId=doc", "", 401, errUnauthorized.msg},
				{"create with wrong key", "/create-namespace?namespaceId=doc", "nope", 401, errUnauthorized.msg},
				{"create without id", "/create-namespace", testAPIKey, 400, "namespaceId is required"},
				{"create empty id", "/create-namespace?namespaceId=", testAPIKey, 400, "namespaceId is required"},
				{"create undefined", "/create-namespace?namespaceId=undefined", testAPIKey, 400, `namespaceId is "undefined": the client did not set it`},
				{"create null", "/create-namespace?namespaceId=null", testAPIKey, 400, `namespaceId is "null": the client did not set it`},
				{"create bad characters", "/create-namespace?namespaceId=a%2Fb", testAPIKey, 400, "namespaceId must be 1 to 64 letters, digits or ._~@- and start with a letter or digit"},
				{"create dot-dot", "/create-namespace?namespaceId=..", testAPIKey, 400, "namespaceId must be 1 to 64 letters, digits or ._~@- and start with a letter or digit"},
				{"create too long", "/create-namespace?namespaceId=" + strings.Repeat("a", 65), testAPIKey, 400, "namespaceId must be 1 to 64 letters, digits or ._~@- and start with a letter or digit"},
				{"create twice in one URL", "/create-namespace?namespaceId=a&namespaceId=b", testAPIKey, 400, "namespaceId is given more than once"},
				{"create", "/create-namespace?namespaceId=doc", testAPIKey, 200, msgAdded},
				{"create again", "/create-namespace?namespaceId=doc", testAPIKey, 200, msgExists},
				{"availability without id", "/check-availability", "", 400, "namespaceId is required"},
				{"availability of unknown", "/check-availability?namespaceId=other", "", 200, msgUnavailable},
				{"availability, no doctor", "/check-availability?namespaceId=doc", "", 200, msgUnavailable},
				{"remove without key", "/remove-namespace?namespaceId=doc", "", 401, errUnauthorized.msg},
				{"remove unknown", "/remove-namespace?namespaceId=other", testAPIKey, 404, errNoNamespace.msg},
				{"remove", "/remove-namespace?namespaceId=doc", testAPIKey, 200, msgRemoved},
				{"remove again", "/remove-namespace?namespaceId=doc", testAPIKey, 404, errNoNamespace.msg},
				{"join-room without id", "/join-room", "", 400, "roomId is required"},
			} {
				code, m := e.getJSON(prefix+tt.path, tt.auth)
				if code != tt.status || m["msg"] != tt.msg || m["status"] != float64(tt.status) {
					t.Errorf("%s: GET %s: %d %v, want %d %q", tt.name, tt.path, code, m, tt.status, tt.msg)
				}
				if tok, ok := m["doctor-token"].(string); ok != (tt.msg == msgAdded) || ok && len(tok) < 22 {
					t.Errorf("%s: doctor-token %q", tt.name, tok) // ≥ 128 bits, only when created
				}
			}
		})
	}
}

// A room id from create-room exists for join-room until it expires or its
// room ends; anything else does not.
func TestRooms(t *testing.T) {
	var offset atomic.Int64 // the test moves the clock while handlers read it
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := newTestEnv(t, Config{Now: clock, Limits: Limits{RoomTTL: time.Minute, PendingRooms: 2}})
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := e.createRoom(), e.createRoom()
	if !uuid.MatchString(a) || a == b {
		t.Fatalf("room ids %q %q", a, b)
	}
	c := e.createRoom() // pushes out the oldest never-entered id
	for name, tt := range map[string]struct {
		id     string
		status int
		body   string
	}{
		"pushed out":   {a, 400, textNoRoom},
		"live":         {c, 200, textRoomOK},
		"upper case":   {strings.ToUpper(b), 200, textRoomOK},
		"unknown":      {"4b8e2a50-0d3c-4f6e-9a1b-2c3d4e5f6a7b", 400, textNoRoom},
		"not a uuid":   {"hello", 400, textNoRoom},
		"socket id":    {"AAAAAAAAAAAAAAAAAAAA", 400, textNoRoom},
		"empty braces": {"%7B%7D", 400, textNoRoom},
	} {
		if code, body := e.get("/api/join-room?roomId="+tt.id, ""); code != tt.status || body != tt.body {
			t.Errorf("%s: %d %q, want %d %q", name, code, body, tt.status, tt.body)
		}
	}
	offset.Store(int64(2 * time.Minute)) // both expire unused
	if code, _ := e.get("/join-room?roomId="+c, ""); code != 400 {
		t.Fatalf("expired room: %d", code)
	}
	e.createRoom() // expired rooms make way for new ones
	e.createRoom()
}

func TestIsRoute(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/create-namespace": true, "/create-namespace": true, "/api/remove-namespace": true,
		"/check-availability": true, "/api/create-room": true, "/join-room": true,
		"/socket.io/": true, "/socket.io": true, "/ehrc/ws/doc": true,
		"/": false, "/api/sessions": false, "/apicreate-room": false, "/api/api/create-room": false,
		"/create-room/x": false, "/rehab/": false, "/webrtc/8080/users": false, "/socket.iox": false,
	} {
		if got := IsRoute(path); got != want {
			t.Errorf("IsRoute(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestTruthy(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"init":true}`: true, `{"init":1}`: true, `{"init":"x"}`: true, `{"init":{}}`: true, `{"init":[]}`: true,
		`{"init":-0.5}`: true, `{}`: false, `{"init":false}`: false, `{"init":0}`: false, `{"init":0.0}`: false,
		`{"init":""}`: false, `{"init":null}`: false, `{"init":-0}`: false,
	} {
		p, err := parsePayload([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.truthy("init"); got != want {
			t.Errorf("%s: truthy %v, want %v", raw, got, want)
		}
	}
}
