package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/childproc"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// TestProcessPerSession runs sessions as `rehabrtc signal` children of a
// real server (WebRTC.executable set), with the rehabrtc binary built once.
func TestProcessPerSession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildRehabRTC(t)
	t.Run("serve", func(t *testing.T) { testChildSessions(t, bin) })
	t.Run("parent killed", func(t *testing.T) { testParentKilled(t, bin) })
}

// buildRehabRTC builds ./cmd/rehabrtc into a temporary directory.
func buildRehabRTC(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "rehabrtc")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rehabrtc")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func childConfig(t *testing.T, bin string, maxSessions int) *config.Config {
	cfg := testConfig(t, t.TempDir(), maxSessions)
	cfg.WebRTC.Executable, cfg.WebRTC.Script, cfg.WebRTC.WorkingDirectory = bin, "signal", t.TempDir()
	return cfg
}

func testChildSessions(t *testing.T, bin string) {
	ts := startServer(t, childConfig(t, bin, 3))
	_, r1 := ts.manage(map[string]any{"action": "start",
		"session_users": []string{therapist}, "session_participants": []string{patient1, patient2}})
	_, r2 := ts.manage(map[string]any{"action": "start", "session_participants": []string{patient1}})
	s1, s2 := r1.Session, r2.Session
	kids := childPIDs(t, os.Getpid(), bin)
	if len(kids) != 2 || kids[s1.Port] == 0 || kids[s2.Port] == 0 {
		t.Fatalf("children by port %v, want sessions on %d and %d", kids, s1.Port, s2.Port)
	}
	for _, s := range []sessionJSON{s1, s2} {
		noKeyInProc(t, kids[s.Port], sessionKeys(t, ts, s.ID))
	}

	// pages and WebSocket through the gateway, proxied to the child
	thLink, p1Link := s1.link(t, therapist), s1.link(t, patient1)
	if getStatus(t, p1Link) != 200 || getStatus(t, strings.Replace(p1Link, "/participants?", "/status?", 1)) != 200 {
		t.Fatal("personal link does not open its page")
	}
	if getStatus(t, strings.Replace(p1Link, "/participants?", "/users?", 1)) != 403 || getStatus(t, s1.URLUsers+"x") != 403 {
		t.Fatal("a wrong key opens a page")
	}
	th, _ := join(t, ts.gateway, thLink, "", "Dr T")
	p1, welcome := join(t, ts.gateway, p1Link, "", "Patient 1")
	if welcome["role"] != "participant" || th.expect("peer-joined")["peer"].(map[string]any)["uuid"] != patient1 {
		t.Fatalf("patient welcome %v", welcome)
	}
	bad := dialWS(t, ts.gateway, s1.Port)
	bad.send(map[string]any{"type": "join", "key": keyOf(s2.link(t, patient1))})
	if e := bad.expect("error"); e["code"] != "unauthorized" || bad.closed() != 4001 {
		t.Fatalf("another session's key: %v", e)
	}
	var v sessionJSON
	ts.api(http.MethodGet, fmt.Sprintf("/api/sessions/%d", s1.ID), nil, &v)
	if len(v.Peers) != 2 {
		t.Fatalf("session_peers %+v", v.Peers)
	}

	// remove kicks
	ts.manage(map[string]any{"action": "remove", "id_session": s1.ID, "session_participants": []string{patient1}})
	p1.expect("removed")
	if c := p1.closed(); c != 4002 {
		t.Fatalf("removed close code %d", c)
	}
	if getStatus(t, p1Link) != 403 {
		t.Fatal("removed patient's link still opens the page")
	}

	// kill -9 the child of s1: within 1 s the port is free, the session terminated
	killed := time.Now()
	syscall.Kill(kids[s1.Port], syscall.SIGKILL)
	th.closed()
	testutil.Eventually(t, time.Second, func() error {
		st, free := ts.sessionStatus(s1.ID), portFree(s1.Port)
		return testutil.Until(st == 4 && free, "after the crash: status %d, port free %v", st, free)
	})
	t.Logf("crash handled in %s", time.Since(killed))
	if getStatus(t, thLink) != 403 {
		t.Fatal("link of a crashed session still opens")
	}

	// stop kills the child; shutdown leaves none
	ts.manage(map[string]any{"action": "stop", "id_session": s2.ID})
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", kids[s2.Port])); err == nil {
		t.Fatal("the stopped session's child still exists")
	}
	ts.manage(map[string]any{"action": "start", "session_participants": []string{patient2}})
	if len(childPIDs(t, os.Getpid(), bin)) != 1 {
		t.Fatal("no child for the new session")
	}
	ts.stop()
	if left := childPIDs(t, os.Getpid(), bin); len(left) != 0 {
		t.Fatalf("children left after shutdown: %v", left)
	}
}

// sessionStatus reads session_status from the API.
func (ts *testServer) sessionStatus(id int64) int {
	var v sessionJSON
	ts.api(http.MethodGet, fmt.Sprintf("/api/sessions/%d", id), nil, &v)
	return int(v.Status)
}

// sessionKeys lists every key of a running session: its kind-level keys
// and every invitee's personal key.
func sessionKeys(t *testing.T, ts *testServer, id int64) []string {
	t.Helper()
	var v sessionJSON
	ts.api(http.MethodGet, fmt.Sprintf("/api/sessions/%d", id), nil, &v)
	keys := []string{v.Key, keyOf(v.URLUsers), keyOf(v.URLParticipants), keyOf(v.URLDevices)}
	for _, inv := range v.Invitations {
		keys = append(keys, keyOf(inv.URL))
	}
	for _, k := range keys {
		if len(k) < 32 {
			t.Fatalf("session %d: key %q missing or short", id, k)
		}
	}
	return keys
}

// noKeyInProc checks that no key is in the command line or environment
// of a process.
func noKeyInProc(t *testing.T, pid int, keys []string) {
	t.Helper()
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range append(keys, testKey) {
			if bytes.Contains(b, []byte(k)) {
				t.Errorf("/proc/%d/%s holds a secret: %q", pid, f, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
	}
}

// childPIDs maps the port of each `<bin> signal` child of ppid to its pid.
func childPIDs(t *testing.T, ppid int, bin string) map[int]int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	out := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		cmd, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmd), "\x00")
		if err1 != nil || err2 != nil || len(args) < 3 || args[0] != bin || args[1] != "signal" {
			continue
		}
		_, rest, _ := strings.Cut(string(stat), ") ") // comm may hold spaces
		var state string
		var parent int
		fmt.Sscanf(rest, "%s %d", &state, &parent)
		if parent == ppid && state != "Z" {
			port, _ := strconv.Atoi(strings.TrimPrefix(args[2], "--port="))
			out[port] = pid
		}
	}
	return out
}

// waitPortFree waits for a dead child's listener to be gone: a Go
// process's leader thread shows as a zombie (waitGone) while its other
// threads still exit, and its sockets close only with the last of them.
func waitPortFree(t *testing.T, port int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		return testutil.Until(portFree(port), "port %d still held after its child exited", port)
	})
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// testParentKilled kills a real `rehabrtc serve` with SIGKILL: its child
// dies with it (Pdeathsig), and the next start brings the session back in
// a new child on the same port; with a stranger on that port, the session
// is terminated with a clear log line instead.
func testParentKilled(t *testing.T, bin string) {
	cfg := childConfig(t, bin, 2)
	cfg.RehabRTC.LogLevel = "info"
	path := filepath.Join(t.TempDir(), "config.json")
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, cfg: cfg, service: "http://" + cfg.ServiceAddr(), gateway: "http://" + cfg.GatewayAddr()}
	srv := startServe(t, bin, path, ts.service)
	_, r := ts.manage(map[string]any{"action": "start", "session_participants": []string{patient1}})
	link := r.Session.link(t, patient1)
	child := childPIDs(t, srv.pid(), bin)[r.Session.Port]
	if child == 0 || getStatus(t, link) != 200 {
		t.Fatalf("session not served by a child (pid %d)", child)
	}
	srv.kill()
	waitGone(t, child)
	waitPortFree(t, r.Session.Port)

	srv = startServe(t, bin, path, ts.service) // restore: a new child on the same port
	child = childPIDs(t, srv.pid(), bin)[r.Session.Port]
	if getStatus(t, link) != 200 || child == 0 {
		t.Fatal("session not restored in a new child")
	}
	srv.kill()
	waitGone(t, child)

	waitPortFree(t, r.Session.Port)
	stranger, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", r.Session.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	srv = startServe(t, bin, path, ts.service)
	if st := ts.sessionStatus(r.Session.ID); st != 4 {
		t.Fatalf("session on a taken port: status %d", st)
	}
	srv.kill()
	if log := srv.log(); !strings.Contains(log, "cannot restore session") || !strings.Contains(log, "address already in use") {
		t.Fatalf("no clear error in the log:\n%s", log)
	}
}

// serveProc is a `rehabrtc serve` process.
type serveProc struct {
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan struct{}
}

func startServe(t *testing.T, bin, config, service string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(bin, "serve", "--config", config), out: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	testutil.Eventually(t, 10*time.Second, func() error {
		code, err := httpGet(service + "/healthz")
		return cmp.Or(err, testutil.Until(code == 200, "rehabrtc serve not healthy (HTTP %d):\n%s", code, p.log()))
	})
	return p
}

func (p *serveProc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process.
func (p *serveProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *serveProc) log() string { return p.out.String() }

// waitGone waits for a process to disappear.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if pid == 0 {
		t.Fatal("no child pid")
	}
	testutil.Eventually(t, 2*time.Second, func() error {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		_, rest, _ := strings.Cut(string(stat), ") ")
		// gone, or a zombie left for init to reap
		return testutil.Until(err != nil || strings.HasPrefix(rest, "Z"), "child %d outlived its parent", pid)
	})
}

// TestSessionRunnerChoice: an empty WebRTC.executable runs sessions in
// process, anything else in children (childproc.ProgramFor has the table).
func TestSessionRunnerChoice(t *testing.T) {
	cfg := config.Default()
	cfg.WebRTC.Executable, cfg.WebRTC.Script = "node", "server.js"
	if r, err := sessionRunner(cfg, endpoint.Options{}); err != nil {
		t.Fatal(err)
	} else if c, ok := r.(*childproc.Runner); !ok || c.Executable != "node" || c.Mode != childproc.EasyRTC {
		t.Fatalf("node server.js gives %+v", r)
	}
	if r, _ := sessionRunner(config.Default(), endpoint.Options{}); r == nil {
		t.Fatal("no in-process runner")
	} else if _, ok := r.(*endpoint.Runner); !ok {
		t.Fatalf("empty executable gives %T", r)
	}
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"signal", "--session=1"}, &out, &errb); err == nil || !strings.Contains(errb.String(), "--port=PORT") {
		t.Fatalf("signal without a port: %v %q", err, errb.String())
	}
}
