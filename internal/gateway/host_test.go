package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestCheckHost is issue 12 item 9: only the public names and loopback
// reach the gateway; any other Host gets 421, pages and upgrades alike.
// Before, "Host: evil.example" was served.
func TestCheckHost(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
	h := CheckHost([]string{"Rehab.Example.org", "10.1.2.3", "2001:db8::5", ""}, ok)
	for host, want := range map[string]int{
		"rehab.example.org":       200,
		"REHAB.example.ORG:40075": 200,
		"rehab.example.org.":      200,
		"10.1.2.3:443":            200,
		"[2001:db8::5]:40075":     200,
		"[2001:DB8:0::5]":         200,
		"localhost:40075":         200,
		"127.0.0.1":               200,
		"127.9.9.9:1":             200,
		"[::1]:40075":             200,
		"[::ffff:127.0.0.1]:1":    200,
		"evil.example":            421,
		"evil.example:40075":      421,
		"rehab.example.org.evil":  421,
		"example.org":             421,
		"10.1.2.4":                421,
		"":                        421,
		"localhost.evil.example":  421,
		"[2001:db8::6]":           421,
		"rehab.example.org:x:y":   421,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/rehab/", nil)
		req.Host = host
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
		if want == 421 && (strings.Contains(rec.Body.String(), "served") || !strings.Contains(rec.Body.String(), "WebRTC.hostname")) {
			t.Errorf("Host %q: body %q", host, rec.Body.String())
		}
	}
}

// A WebSocket upgrade through a foreign name is refused before any
// handler upgrades it, even with a matching Origin.
func TestCheckHostWebSocket(t *testing.T) {
	upgraded := make(chan struct{}, 1)
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{"evil.example"}})
		if err != nil {
			return
		}
		upgraded <- struct{}{}
		c.Close(websocket.StatusNormalClosure, "")
	})
	srv := httptest.NewServer(CheckHost([]string{"rehab.example.org"}, ws))
	defer srv.Close()
	hdr := http.Header{"Origin": {"http://evil.example"}}
	c, resp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/websocket/8080/",
		&websocket.DialOptions{HTTPHeader: hdr, Host: "evil.example"})
	if err == nil {
		c.CloseNow()
		t.Fatal("upgraded through Host: evil.example")
	}
	if resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("want 421, got %v %v", resp, err)
	}
	select {
	case <-upgraded:
		t.Fatal("the handler upgraded")
	default:
	}
	c, _, err = websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/websocket/8080/",
		&websocket.DialOptions{Host: "rehab.example.org"})
	if err != nil {
		t.Fatalf("the public name: %v", err)
	}
	c.CloseNow()
}
