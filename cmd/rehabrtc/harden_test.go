package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/rehabrtc/rehabrtc/internal/ports"
)

// TestGatewayHostCheck is issue 12 item 9 end to end: the gateway of a
// real server answers 421 to a foreign Host, for the dashboard and for a
// WebSocket upgrade with a matching Origin, and serves its public names.
func TestGatewayHostCheck(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), 2)
	cfg.WebRTC.Hostname = "rehab.example.org"
	cfg.RehabRTC.Gateway.Hosts = []string{"alias.example.org"}
	ts := startServer(t, cfg)
	for host, want := range map[string]int{
		"evil.example":      421,
		"rehab.example.org": 200,
		"alias.example.org": 200,
		"127.0.0.1":         200,
	} {
		req, _ := http.NewRequest("GET", ts.gateway+"/rehab/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("dashboard with Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
	url := "ws" + strings.TrimPrefix(ts.gateway, "http") + "/ehrc/ws/doc"
	c, resp, err := websocket.Dial(t.Context(), url, &websocket.DialOptions{
		Host: "evil.example", HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil {
		c.CloseNow()
		t.Fatal("WebSocket upgraded through Host: evil.example")
	}
	if resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("WebSocket with Host evil.example: %v %v, want 421", resp, err)
	}
}

// TestServersBoundBodies is issue 12 item 10 for the servers serve
// builds: a body announced over the bound is refused before any handler
// runs (before: the handler ran and nothing bounded the body's time).
// The slow-body deadline itself is tested in internal/httpserver.
func TestServersBoundBodies(t *testing.T) {
	ran := false
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran = true }))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/sessions/manager", strings.NewReader("{}"))
	req.ContentLength = 2 << 20
	srv.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || ran {
		t.Fatalf("2 MiB body: %d, handler ran %v", rec.Code, ran)
	}
	if srv.ReadHeaderTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("timeouts not set: %+v", srv)
	}
}

// TestStartSkipsHeldPort is issue 12 item 12 end to end: the first pool
// port is held by an outgoing connection (as when the pool overlaps the
// ephemeral range); a start takes the next port instead of answering 500.
func TestStartSkipsHeldPort(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cfg.WebRTC.LocalBasePort}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := startServer(t, cfg)
	code, r := ts.manage(map[string]any{"action": "start"})
	if code != 200 || r.Session.Port != cfg.WebRTC.LocalBasePort+1 {
		t.Fatalf("start with the first pool port held: %d %+v, want port %d", code, r, cfg.WebRTC.LocalBasePort+1)
	}
	if code, r := ts.manage(map[string]any{"action": "start"}); code != 503 {
		t.Fatalf("second start with the only other port held: %d %+v, want 503", code, r)
	}
}

// config check warns when the pool overlaps the kernel's ephemeral range.
func TestConfigCheckWarnsEphemeralOverlap(t *testing.T) {
	b, err := os.ReadFile(ports.EphemeralRangeFile)
	if err != nil {
		t.Skipf("no %s: not Linux", ports.EphemeralRangeFile) // the warning needs the kernel's range
	}
	var lo int
	fmt.Sscan(string(b), &lo)
	path := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(path, []byte(fmt.Sprintf(`{"WebRTC": {"local_base_port": %d, "max_sessions": 10}}`, lo)), 0o600)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"config", "check", "--config", path}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "warning: WebRTC.local_base_port") || !strings.Contains(stdout.String(), "configuration OK") {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
