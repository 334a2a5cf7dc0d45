package childproc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// fakeGate admits the keys of a map.
type fakeGate map[string]session.Identity

func (g fakeGate) Admit(_ context.Context, key, uuid string) (session.Identity, error) {
	id, ok := g[key]
	if !ok || (uuid != "" && uuid != id.UUID) {
		return session.Identity{}, session.ErrDenied
	}
	return id, nil
}

func (g fakeGate) Valid(_ context.Context, key string) bool { _, ok := g[key]; return ok }

var testGate = fakeGate{
	"therapist-key-0123456789": {Kind: session.KindUser, UUID: "u1"},
	"patient-key-0123456789":   {Kind: session.KindParticipant, UUID: "p1"},
}

// testRunner runs the test binary itself as a native child.
func testRunner(t *testing.T, mode string) *Runner {
	t.Setenv(envTestChild, mode)
	t.Setenv("GORACE", "atexit_sleep_ms=0")                    // a -race child would sleep 1 s at exit
	t.Setenv("REHABRTC_API_KEYS", "service-secret-0123456789") // must not reach the child
	return &Runner{Executable: os.Args[0], Mode: Native, WorkingDir: t.TempDir(),
		ICEServers: json.RawMessage(`[{"urls":"turn:x","username":"u","credential":"turn-secret"}]`)}
}

func startChild(t *testing.T, r *Runner, port int, log io.Writer) *child {
	t.Helper()
	ep, err := r.Start(context.Background(), session.RunSpec{SessionID: 7, SessionUUID: "sess-uuid", Port: port,
		Gate: testGate, Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ch := ep.(*child)
	t.Cleanup(func() { ch.Stop(context.Background(), session.StopShutdown) })
	return ch
}

func get(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// procFile reads /proc/<pid>/<name> with NULs as spaces.
func procFile(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

func noSecrets(t *testing.T, pid int, secrets ...string) {
	t.Helper()
	for _, f := range []string{"cmdline", "environ"} {
		text := procFile(t, pid, f)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("/proc/%d/%s holds a secret: %q", pid, f, text)
			}
		}
	}
}

func TestNativeChild(t *testing.T) {
	log := &testutil.Buffer{}
	port := testutil.FreePort(t)
	ch := startChild(t, testRunner(t, "serve"), port, log)

	noSecrets(t, ch.pid(), "therapist-key", "patient-key", "service-secret", "turn-secret")
	if cmd := procFile(t, ch.pid(), "cmdline"); !strings.Contains(cmd, fmt.Sprintf("--port=%d --session=7", port)) {
		t.Errorf("cmdline %q", cmd)
	}
	if code, _ := get(t, port, "/status?key=patient-key-0123456789"); code != 200 {
		t.Errorf("status with a good key: %d", code)
	}
	if code, _ := get(t, port, "/status?key=nope"); code != 403 {
		t.Errorf("status with a bad key: %d", code)
	}
	if code, body := get(t, port, "/page?key=therapist-key-0123456789"); code != 200 || !strings.Contains(body, `"UUID":"u1"`) {
		t.Errorf("page: %d %s", code, body)
	}
	if code, _ := get(t, port, "/page?key=therapist-key-0123456789&uuid=someone-else"); code != 403 {
		t.Errorf("page with another uuid: %d", code)
	}
	if p := ch.Peers(); len(p) != 1 || p[0].Name != "Dr T" {
		t.Errorf("peers %+v", p)
	}
	ch.Kick(session.Identity{Kind: session.KindParticipant, UUID: "p1"})
	waitFor(t, time.Second, func() bool {
		_, info := get(t, port, "/info")
		return strings.Contains(info, `"kicked":[{"Kind":"participant","UUID":"p1"}]`) &&
			strings.Contains(info, `"uuid":"sess-uuid"`) && strings.Contains(info, "turn-secret")
	})
	if !strings.Contains(log.String(), fmt.Sprintf(`msg="session child ready" pid=%d addr=127.0.0.1:%d stream=stderr`, ch.pid(), port)) {
		t.Errorf("child log not relayed:\n%s", log)
	}

	start := time.Now()
	if err := ch.Stop(context.Background(), session.StopEnded); err != nil {
		t.Errorf("stop: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %s\n%s", d, log)
	}
	portFree(t, port)
}

func TestCrashDetected(t *testing.T) {
	port := testutil.FreePort(t)
	ch := startChild(t, testRunner(t, "serve"), port, io.Discard)
	killed := time.Now()
	syscall.Kill(ch.pid(), syscall.SIGKILL)
	select {
	case <-ch.Done():
	case <-time.After(time.Second):
		t.Fatal("crash not seen within 1 s")
	}
	t.Logf("crash seen after %s: %v", time.Since(killed), ch.Err())
	if ch.Err() == nil || !strings.Contains(ch.Err().Error(), "killed") {
		t.Errorf("Err = %v", ch.Err())
	}
	portFree(t, port)
	if err := ch.Stop(context.Background(), session.StopEnded); err != nil {
		t.Errorf("stop of a dead child: %v", err)
	}
}

func TestBindFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = testRunner(t, "serve").Start(context.Background(), session.RunSpec{SessionID: 3, Port: port, Gate: testGate})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}

func TestStartFailures(t *testing.T) {
	spec := session.RunSpec{SessionID: 4, Port: testutil.FreePort(t), Gate: testGate}
	r := &Runner{Executable: "/does/not/exist", Mode: Native}
	if _, err := r.Start(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "/does/not/exist") {
		t.Errorf("missing executable: %v", err)
	}
	silent := filepath.Join(t.TempDir(), "silent.sh")
	os.WriteFile(silent, []byte("#!/bin/sh\nsleep 30\n"), 0o755)
	r = &Runner{Executable: silent, Mode: Native, StartTimeout: 300 * time.Millisecond}
	start := time.Now()
	if _, err := r.Start(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "not ready within") {
		t.Errorf("silent child: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("silent child took %s to fail", d)
	}
}

func TestStopKillsStuckChild(t *testing.T) {
	port := testutil.FreePort(t)
	r := testRunner(t, "hang")
	r.StopGrace = 200 * time.Millisecond
	ch := startChild(t, r, port, io.Discard)
	start := time.Now()
	err := ch.Stop(context.Background(), session.StopEnded)
	if err == nil || !strings.Contains(ch.Err().Error(), "killed") {
		t.Errorf("stop = %v, child ended with %v", err, ch.Err())
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stop took %s", d)
	}
	portFree(t, port)
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	testutil.Eventually(t, d, func() error { return testutil.Until(ok(), "condition not met") })
}

// portFree checks that the port can be bound again.
func portFree(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d still taken: %v", port, err)
	}
	ln.Close()
}

// mintICE stands in for relay.ICE (the parent's minter; tested in
// internal/relay and, through a real child, in cmd/rehabrtc): it hands a
// credential naming the session and peer it was asked for.
type mintICE struct{ exp time.Time }

func (m mintICE) ICEServers(sid int64, id session.Identity) (json.RawMessage, time.Time) {
	return json.RawMessage(fmt.Sprintf(`[{"urls":["turn:h:3478"],"username":"%d.%s.%s","credential":"minted-%s"}]`,
		sid, id.Kind, id.UUID, id.UUID)), m.exp
}

func (mintICE) Policy() string { return "relay" }

// TestChildPeerICE: a native child asks its parent for each peer's ICE
// servers; the parent mints them for the child's own session, and nothing
// minted is on the child's command line or environment.
func TestChildPeerICE(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	r := testRunner(t, "serve")
	r.ICE = mintICE{exp}
	port := testutil.FreePort(t)
	ch := startChild(t, r, port, io.Discard)

	tests := []struct {
		query, want string
		wantExp     int64
	}{
		{"kind=participant&uuid=p1", `"username":"7.participant.p1","credential":"minted-p1"`, exp.Unix()},
		{"kind=user&uuid=u1", `"username":"7.user.u1"`, exp.Unix()},
		// a question the parent refuses: the static list, asked again soon
		{"kind=admin&uuid=u1", `"credential":"turn-secret"`, 0},
		{"kind=user&uuid=", `"credential":"turn-secret"`, 0},
	}
	for _, tt := range tests {
		code, body := get(t, port, "/ice?"+tt.query)
		var got struct {
			Servers json.RawMessage
			Expires int64
			Policy  string
		}
		if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
			t.Fatalf("%s: %d %s", tt.query, code, body)
		}
		if !strings.Contains(string(got.Servers), tt.want) || got.Policy != "relay" {
			t.Errorf("%s: servers %s policy %q, want %s", tt.query, got.Servers, got.Policy, tt.want)
		}
		switch {
		case tt.wantExp != 0 && got.Expires != tt.wantExp:
			t.Errorf("%s: expires %d, want %d", tt.query, got.Expires, tt.wantExp)
		case tt.wantExp == 0 && (got.Expires < time.Now().Unix() || got.Expires > time.Now().Add(iceRetry+time.Second).Unix()):
			t.Errorf("%s: fallback expires %d, want within %s", tt.query, got.Expires, iceRetry)
		}
	}
	noSecrets(t, ch.pid(), "minted-")
}

// TestChildWithoutPeerICE: without a parent minter, children hand the
// static list and never ask.
func TestChildWithoutPeerICE(t *testing.T) {
	port := testutil.FreePort(t)
	startChild(t, testRunner(t, "serve"), port, io.Discard)
	if code, _ := get(t, port, "/ice?kind=user&uuid=u1"); code != 404 {
		t.Errorf("a child without per-peer ICE built a PeerICE (%d)", code)
	}
}
