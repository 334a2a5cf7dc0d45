package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coder/websocket"
	"github.com/rehabrtc/rehabrtc/internal/config"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The ports testConfig found free may be taken by another process
	// before the dial binds one: then take a fresh range.
	var cfg *config.Config
	var c net.Conn
	for try := 0; ; try++ {
		cfg = testConfig(t, t.TempDir(), 2)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cfg.WebRTC.LocalBasePort}}
		if c, err = d.Dial("tcp", ln.Addr().String()); err == nil {
			break
		}
		if try == 4 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
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

// writeCfg writes cfg as a configuration file for the CLI.
func writeCfg(t *testing.T, cfg *config.Config) string {
	t.Helper()
	b, err := cfg.JSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rehabrtc.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeRefusesDamagedStore is issue 12 item 5 end to end: serve on a
// damaged store exits with one line naming the file and what to do,
// never a panic.
func TestServeRefusesDamagedStore(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, 2)
	db := filepath.Join(dir, "rehabrtc.db")
	os.WriteFile(db, bytes.Repeat([]byte("not a store "), 2000), 0o600)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"serve", "--config", writeCfg(t, cfg)}, &stdout, &stderr)
	if err == nil {
		t.Fatal("serve started on a damaged store")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, db) || !strings.Contains(msg, "move the file aside") {
		t.Fatalf("error is not one line naming the file and what to do: %q", msg)
	}
	if err := run(t.Context(), []string{"store", "check", "--config", writeCfg(t, cfg)}, &stdout, &stderr); err == nil ||
		!strings.Contains(err.Error(), "is damaged") {
		t.Fatalf("store check of a damaged store: %v", err)
	}
}

// TestStoreCheckAndBackup: store check says what is there; store backup
// works online (through the running service, whose bbolt holds the file
// lock) and offline, and the copies check.
func TestStoreCheckAndBackup(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, 2)
	cfgFile := writeCfg(t, cfg)
	cli := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append(args, "--config", cfgFile), &stdout, &stderr)
		return stdout.String() + stderr.String(), err
	}
	if out, err := cli("store", "check"); err != nil || !strings.Contains(out, "no file yet") {
		t.Fatalf("check before the first start: %q %v", out, err)
	}
	ts := startServer(t, cfg)
	if code, r := ts.manage(map[string]any{"action": "start"}); code != 200 {
		t.Fatalf("start: %d %+v", code, r)
	}
	online := filepath.Join(t.TempDir(), "online.db")
	if out, err := cli("store", "backup", online); err != nil || !strings.Contains(out, "1 sessions") || !strings.Contains(out, "online") {
		t.Fatalf("online backup: %q %v", out, err)
	}
	if out, err := cli("store", "check"); err == nil || !strings.Contains(out+err.Error(), "in use") {
		t.Fatalf("check while the service runs: %q %v", out, err)
	}
	ts.stop()
	offline := filepath.Join(t.TempDir(), "offline.db")
	if out, err := cli("store", "backup", offline); err != nil || !strings.Contains(out, "1 sessions") || !strings.Contains(out, "offline") {
		t.Fatalf("offline backup: %q %v", out, err)
	}
	for _, f := range []string{online, offline} {
		if out, err := cli("store", "check", "--file", f); err != nil || !strings.Contains(out, "OK, 1 sessions") {
			t.Fatalf("check of %s: %q %v", f, out, err)
		}
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, fi, err)
		}
	}
}
