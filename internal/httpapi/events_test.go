package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/feed"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// TestEventStream: the stream needs the key, says hello, passes each change
// on as one data line, sends heartbeats while idle, and ends when the broker
// closes (a shutdown), so the server's own shutdown never waits for it.
func TestEventStream(t *testing.T) {
	var b feed.Broker
	srv := httptest.NewServer(New(Config{Sessions: sessions{}, APIKeys: []string{key}, Events: &b, Heartbeat: 50 * time.Millisecond}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func(prefix string) string {
		t.Helper()
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line %q: %v", prefix, lines.Err())
		return ""
	}
	next("event: hello")
	next("data: {}")
	b.SessionEvent(session.Change{Type: session.ChangeInvited, Session: &session.View{ID: 4}})
	if got := next("data: "); got != `data: {"type":"session","id_session":4,"change":"invited"}` {
		t.Fatalf("event line %q", got)
	}
	next(": ping")
	b.Close()
	for lines.Scan() {
	}
	if err := lines.Err(); err != nil {
		t.Fatalf("stream did not end cleanly at broker close: %v", err)
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}

	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after close: %d", resp2.StatusCode)
	}
}

func TestForgetRoute(t *testing.T) {
	for name, tc := range map[string]struct {
		path string
		err  error
		want int
	}{
		"ok":      {"/api/sessions/3/personal-data", nil, 200},
		"bad id":  {"/api/sessions/x/personal-data", nil, 400},
		"running": {"/api/sessions/3/personal-data", &session.Error{Code: session.CodeBadRequest, Text: "stop it first"}, 400},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("DELETE", tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			New(Config{Sessions: sessions{tc.err}, APIKeys: []string{key}}).ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
}
