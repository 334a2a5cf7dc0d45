package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeHomes stands for the cluster's port → node table (Redis in
// production; cluster.Homes is tested against a real one).
type fakeHomes map[int]struct {
	addr   string
	moving bool
	err    error
}

func (f fakeHomes) Home(_ context.Context, port int) (string, bool, error) {
	h := f[port]
	return h.addr, h.moving, h.err
}

// TestProxyToHome: a session another node serves is proxied to that node's
// internal address with its path unchanged (the home checks the key); a
// session moving after its node's loss gets 503 with Retry-After; a port
// no node serves gets the dead-link answers; a local session stays local.
func TestProxyToHome(t *testing.T) {
	var got []string
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RequestURI())
		w.Write([]byte("home"))
	}))
	defer home.Close()
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("local")) })
	homes := fakeHomes{
		9001: {addr: strings.TrimPrefix(home.URL, "http://")},
		9002: {moving: true},
		9003: {err: errors.New("redis down")},
	}
	g := New(http.NotFoundHandler(), fakeSessions{9000: local}, "127.0.0.1").WithHomes(homes)
	for _, tc := range []struct {
		path, body string
		code       int
		retry      bool
	}{
		{"/webrtc/9000/users?key=k", "local", 200, false},
		{"/webrtc/9001/users?key=k", "home", 200, false},
		{"/websocket/9001/", "home", 200, false},
		{"/webrtc/9002/users?key=k", "", 503, true},
		{"/webrtc/9003/status", "", 503, true},
		{"/webrtc/9004/users?key=k", "", 403, false},
		{"/webrtc/9004/other", "", 404, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if rec.Code != tc.code || (tc.body != "" && rec.Body.String() != tc.body) || (rec.Header().Get("Retry-After") != "") != tc.retry {
				t.Fatalf("%d %q retry %q", rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
			}
		})
	}
	if want := []string{"/webrtc/9001/users?key=k", "/websocket/9001/"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("home got %v, want %v", got, want)
	}
}

// TestProxyToHomeKeepsOrigin: a browser's WebSocket (with an Origin of the
// gateway it loaded the page from) proxied to the session's home is
// accepted by the home's same-origin check, and a foreign Origin is still
// refused there.
func TestProxyToHomeKeepsOrigin(t *testing.T) {
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil) // the hub's options: same origin only
		if err != nil {
			return
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer home.Close()
	homes := fakeHomes{9001: {addr: strings.TrimPrefix(home.URL, "http://")}}
	gw := httptest.NewServer(New(http.NotFoundHandler(), fakeSessions{}, "127.0.0.1").WithHomes(homes))
	defer gw.Close()
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{gw.URL, true},
		{"http://evil.example", false},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			h := http.Header{"Origin": {tc.origin}}
			c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/websocket/9001/", &websocket.DialOptions{HTTPHeader: h})
			if c != nil {
				c.CloseNow()
			}
			if (err == nil) != tc.ok {
				code := 0
				if resp != nil {
					code = resp.StatusCode
				}
				t.Fatalf("dial with Origin %s: %v (HTTP %d), want ok=%v", tc.origin, err, code, tc.ok)
			}
		})
	}
}
