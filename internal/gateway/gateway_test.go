package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"key=secret":                    "key=REDACTED",
		"key=a&key=b&lang=fr":           "key=REDACTED&lang=fr",
		"name=Bob&token=t&uuid=u":       "name=Bob&token=REDACTED&uuid=u",
		"access_token=x":                "access_token=REDACTED",
		"EIO=4&sid=s&transport=polling": "EIO=4&sid=REDACTED&transport=polling",
		"%zz":                           "(unparsable query)",
		"lang=en":                       "lang=en",
	} {
		if got := RedactQuery(in); got != want {
			t.Errorf("RedactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAccessLogNeverLogsKeys(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	client := func(*http.Request) string { return "203.0.113.7" } // what the proxy rule decided
	h := AccessLog(log, client, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/webrtc/8080/users?key=SUPERSECRET&lang=fr", nil))
	if strings.Contains(buf.String(), "SUPERSECRET") || !strings.Contains(buf.String(), "status=403") ||
		!strings.Contains(buf.String(), "client=203.0.113.7") {
		t.Fatalf("log line: %s", buf.String())
	}
}

type fakeSessions map[int]http.Handler

func (f fakeSessions) Handler(port int) (http.Handler, bool) {
	h, ok := f[port]
	return h, ok
}

func TestRouting(t *testing.T) {
	echo := func(tag string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, tag+" "+r.URL.Path+" "+r.URL.RawQuery)
		})
	}
	g := New(echo("service"), fakeSessions{8080: echo("s8080")}, "127.0.0.1")
	for name, tc := range map[string]struct {
		path, body string
		status     int
	}{
		"service":         {"/rehab/api/sessions", "service /api/sessions ", 200},
		"service root":    {"/rehab/", "service / ", 200},
		"metrics hidden":  {"/rehab/metrics", "", 404},
		"root redirect":   {"/", "", 302},
		"page stripped":   {"/webrtc/8080/users?key=k", "s8080 /users key=k", 200},
		"ws kept":         {"/websocket/8080/", "s8080 /websocket/8080/ ", 200},
		"no session page": {"/webrtc/8081/participants?key=k", "", 403},
		"no session ws":   {"/websocket/8081/", "", 404},
		"bad port":        {"/webrtc/x/users", "", 404},
		"huge port":       {"/webrtc/99999999/users", "", 404},
		"other":           {"/etc/passwd", "", 404},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if rec.Code != tc.status || (tc.body != "" && rec.Body.String() != tc.body) {
				t.Fatalf("%s: %d %q", tc.path, rec.Code, rec.Body.String())
			}
		})
	}
}

// Mounted handlers take their paths first; everything else routes as before.
func TestMount(t *testing.T) {
	echo := func(tag string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tag+" "+r.URL.Path) })
	}
	g := New(echo("service"), fakeSessions{}, "127.0.0.1")
	g.Mount(func(p string) bool { return p == "/create-room" || strings.HasPrefix(p, "/socket.io/") }, echo("ehrc"))
	for path, want := range map[string]string{
		"/create-room":         "ehrc /create-room",
		"/socket.io/":          "ehrc /socket.io/",
		"/rehab/api/sessions":  "service /api/sessions",
		"/rehab/api/join-room": "service /api/join-room",
		"/create-room/x":       "404 page not found\n",
	} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if got := rec.Body.String(); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
