package childproc

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

func TestEasyRTCChild(t *testing.T) {
	node := testutil.Tool(t, "node", "install Node.js to run OpenTera's EasyRTC child test")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.js"), []byte(teratest.ServerJS), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REHABRTC_API_KEYS", "service-secret-0123456789")
	r := &Runner{Executable: node, Script: "server.js", WorkingDir: dir, Mode: EasyRTC}
	port := testutil.FreePort(t)
	ch := startChild(t, r, port, io.Discard)

	cmdline := procFile(t, ch.pid(), "cmdline")
	if strings.Contains(cmdline, "--key") || !strings.Contains(cmdline, "server.js --port=") {
		t.Errorf("cmdline %q", cmdline)
	}
	noSecrets(t, ch.pid(), "therapist-key", "patient-key", "service-secret")
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "rehabrtc-easyrtc-*.cjs")); len(m) > 0 {
		t.Errorf("preload files left behind: %v", m)
	}
	for path, want := range map[string]string{
		"/participants?key=patient-key-0123456789&name=P": "200 page participants with a key: true",
		"/Participants/x?key=patient-key-0123456789":      "200 page participants with a key: true",
		"/status?key=therapist-key-0123456789":            "200 page status with a key: true",
		"/users?key=therapist-key-0123456789&uuid=u1":     "200 page users with a key: true",
		"/users?key=patient-key-0123456789":               "403", // a participant's key on the users page
		"/participants?key=nope":                          "403",
		"/status?key=":                                    "403",
		"/css/x.css":                                      "200 static",
	} {
		code, body := get(t, port, path)
		if got := strings.TrimSpace(strings.Join([]string{strconv.Itoa(code), body}, " ")); !strings.HasPrefix(got, want) {
			t.Errorf("GET %s = %q, want %q", path, got, want)
		}
	}

	if err := ch.Stop(context.Background(), session.StopEnded); err != nil {
		t.Errorf("stop: %v", err)
	}
	portFree(t, port)
}

func TestEasyRTCChildCrash(t *testing.T) {
	node := testutil.Tool(t, "node", "install Node.js to run OpenTera's EasyRTC child test")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(teratest.ServerJS), 0o644)
	port := testutil.FreePort(t)
	ch := startChild(t, &Runner{Executable: node, Script: "server.js", WorkingDir: dir, Mode: EasyRTC}, port, io.Discard)
	syscall.Kill(ch.pid(), syscall.SIGKILL)
	select {
	case <-ch.Done():
	case <-time.After(time.Second):
		t.Fatal("crash not seen within 1 s")
	}
	portFree(t, port)
}
