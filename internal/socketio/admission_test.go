package socketio

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A flood of handshakes that never join a namespace is bounded per client
// address (defaults), with a clear refusal, and costs no goroutine per
// refused handshake. Before the bound, 3,000 handshakes made 3,000
// goroutines.
func TestPendingBoundPerAddress(t *testing.T) {
	env := newTestEnv(t, testOptions(newRecorder()))
	before := runtime.NumGoroutine()
	const flood = 300
	accepted, refused := 0, 0
	var sids []string
	for range flood {
		status, body := env.do("GET", env.url("transport=polling"), "")
		switch {
		case status == 200 && strings.HasPrefix(body, "0{"):
			accepted++
			sids = append(sids, body[9:29])
		case status == http.StatusTooManyRequests:
			refused++
			if want := `{"code":4,"message":"Too many connections waiting to join a namespace from this address"}`; body != want {
				t.Fatalf("refusal %q, want %q", body, want)
			}
		default:
			t.Fatalf("handshake: %d %q", status, body)
		}
	}
	if accepted != DefaultMaxPendingPerAddress || refused != flood-DefaultMaxPendingPerAddress {
		t.Fatalf("accepted %d, refused %d; want %d and %d", accepted, refused, DefaultMaxPendingPerAddress, flood-DefaultMaxPendingPerAddress)
	}
	if got := env.srv.PendingCount(); got != DefaultMaxPendingPerAddress {
		t.Fatalf("pending %d, want %d", got, DefaultMaxPendingPerAddress)
	}
	// One loop goroutine per accepted session (plus the HTTP server's
	// keep-alive connections), none per refused one.
	if g := runtime.NumGoroutine() - before; g > 2*DefaultMaxPendingPerAddress+10 {
		t.Fatalf("%d more goroutines after %d handshakes", g, flood)
	}
	// A WebSocket handshake from the same address is refused before the upgrade.
	if _, resp, err := env.dialErr("transport=websocket"); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("WebSocket handshake over the bound: %v %v", err, resp)
	}
	// A session that joins a namespace is no longer pending: its place frees.
	env.mustPost(sids[0], "40")
	waitFor(t, "joined session not pending", func() bool { return env.srv.PendingCount() == DefaultMaxPendingPerAddress-1 })
	env.openPolling()
	// A session that ends frees its place too.
	env.mustPost(sids[1], "1")
	waitFor(t, "closed session not pending", func() bool { return env.srv.PendingCount() == DefaultMaxPendingPerAddress-1 })
	env.openPolling()
}

// The total bound holds across addresses, and per-address counts are kept
// apart.
func TestPendingBoundTotal(t *testing.T) {
	opts := testOptions(newRecorder())
	opts.MaxPending, opts.MaxPendingPerAddress = 5, 2
	opts.ClientAddress = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	env := newTestEnv(t, opts)
	handshake := func(client string) (int, string) {
		req, _ := http.NewRequest("GET", env.url("transport=polling"), nil)
		req.Header.Set("X-Test-Client", client)
		res, err := env.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b := make([]byte, 512)
		n, _ := res.Body.Read(b)
		return res.StatusCode, string(b[:n])
	}
	for _, tt := range []struct {
		client string
		want   int
	}{
		{"a", 200}, {"a", 200}, {"a", 429}, {"b", 200}, {"b", 200}, {"b", 429}, {"c", 200}, {"c", 503}, {"d", 503},
	} {
		if status, body := handshake(tt.client); status != tt.want {
			t.Fatalf("client %s: %d %q, want %d", tt.client, status, body, tt.want)
		}
	}
}

func TestOrigins(t *testing.T) {
	const app = "https://app.example.org"
	opts := testOptions(newRecorder())
	opts.AllowedOrigins = []string{app}
	env := newTestEnv(t, opts)
	poll := func(method, origin string) *http.Response {
		req, _ := http.NewRequest(method, env.url("transport=polling"), nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		res, err := env.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	tests := []struct {
		name, method, origin string
		status               int
		acao                 string
	}{
		{"no origin", "GET", "", 200, ""},
		{"same origin", "GET", env.ts.URL, 200, ""},
		{"allowed origin", "GET", app, 200, app},
		{"allowed origin, other case", "GET", "HTTPS://APP.example.org", 200, "HTTPS://APP.example.org"},
		{"other origin", "GET", "https://evil.example", 403, ""},
		{"allowed origin's other port", "GET", app + ":8443", 403, ""},
		{"null origin", "GET", "null", 403, ""},
		{"preflight, allowed", "OPTIONS", app, 204, app},
		{"preflight, other", "OPTIONS", "https://evil.example", 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := poll(tt.method, tt.origin)
			if res.StatusCode != tt.status || res.Header.Get("Access-Control-Allow-Origin") != tt.acao {
				t.Fatalf("%d ACAO %q, want %d %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), tt.status, tt.acao)
			}
		})
	}
	t.Run("websocket", func(t *testing.T) {
		for origin, ok := range map[string]bool{app: true, "https://evil.example": false, "": true} {
			u := "ws" + strings.TrimPrefix(env.url("transport=websocket"), "http")
			h := http.Header{}
			if origin != "" {
				h.Set("Origin", origin)
			}
			ws, resp, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{HTTPHeader: h})
			if ok != (err == nil) {
				t.Fatalf("origin %q: err %v, want ok=%v", origin, err, ok)
			}
			if err == nil {
				_ = ws.CloseNow()
			} else if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("origin %q: %v, want 403", origin, resp)
			}
		}
	})
}

func TestLimitKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:aaaa::1": "2001:db8:1:2::/64",
		"2001:db8:1:2:bbbb::9": "2001:db8:1:2::/64",
		"::ffff:192.0.2.7":     "::ffff:192.0.2.7",
		"not an address":       "not an address",
		"fe80::1%eth0":         "fe80::/64",
	} {
		if got := LimitKey(in); got != want {
			t.Errorf("LimitKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// A session whose last socket leaves is pending again: joining and leaving
// a namespace cannot hold sessions outside the bounds, nor past
// ConnectTimeout.
func TestLeavingMakesPendingAgain(t *testing.T) {
	opts := testOptions(newRecorder())
	opts.MaxPendingPerAddress = 2
	env := newTestEnv(t, opts)
	a, b := env.openPolling(), env.openPolling()
	env.mustPost(a, "40")
	env.mustPost(b, "40")
	waitFor(t, "both admitted", func() bool { return env.srv.PendingCount() == 0 })
	c, d := env.openPolling(), env.openPolling() // the bound is full again
	_ = d
	env.mustPost(a, "41") // a leaves its namespace: over the bound, closed
	waitFor(t, "a closed", func() bool { return env.srv.lookup(a) == nil })
	env.mustPost(c, "40") // c is admitted: a place frees
	waitFor(t, "c admitted", func() bool { return env.srv.PendingCount() == 1 })
	env.mustPost(b, "41") // b leaves: pending again, within the bound
	waitFor(t, "b pending", func() bool { return env.srv.PendingCount() == 2 })
	if env.srv.lookup(b) == nil {
		t.Fatal("b closed though within the bound")
	}

	// And it gets ConnectTimeout again to join one.
	opts = testOptions(newRecorder())
	opts.ConnectTimeout = 200 * time.Millisecond
	env = newTestEnv(t, opts)
	e := env.openPolling()
	env.mustPost(e, "40")
	time.Sleep(300 * time.Millisecond) // past the first timeout, while admitted
	if env.srv.lookup(e) == nil {
		t.Fatal("admitted session closed by the connect timeout")
	}
	env.mustPost(e, "41")
	waitFor(t, "connect timeout after leaving", func() bool { return env.srv.lookup(e) == nil })
}
