package main

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestCLIUsage(t *testing.T) {
	for name, tc := range map[string]struct {
		args    []string
		wantErr string
		wantOut string
	}{
		"no args":        {nil, "missing command", ""},
		"unknown":        {[]string{"fly"}, `unknown command "fly"`, ""},
		"help":           {[]string{"--help"}, "", "rehabrtc serve"},
		"version":        {[]string{"version"}, "", "rehabrtc "},
		"config default": {[]string{"config", "default"}, "", `"local_base_port": 8080`},
		"config bad":     {[]string{"config", "nope"}, "unknown subcommand", ""},
		"session no sub": {[]string{"session"}, "missing subcommand", ""},
		"session bad id": {[]string{"session", "stop", "x", "--server", "http://127.0.0.1:1", "--key-file", "/dev/null"}, "API key", ""},
		"serve bad flag": {[]string{"serve", "--nope"}, "flag provided but not defined", ""},
		"serve bad file": {[]string{"serve", "--config", "/does/not/exist.json"}, "/does/not/exist.json", ""},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("output %q lacks %q", out.String(), tc.wantOut)
			}
		})
	}
}

// TestCLIAgainstServer drives the session subcommands against a real server.
func TestCLIAgainstServer(t *testing.T) {
	ts := startServer(t, testConfig(t, t.TempDir(), 2))
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		t.Setenv("REHABRTC_API_KEY", testKey)
		args = append([]string{"session"}, append(args, "--server", ts.service)...)
		if err := run(context.Background(), args, &out, &errb); err != nil {
			t.Fatalf("%v: %v (%s)", args, err, errb.String())
		}
		return out.String()
	}
	out := cli("start", "--participant", patient1, "--user", therapist, "--name", "Rééducation")
	if !strings.Contains(out, "started") || !strings.Contains(out, "/webrtc/") || !strings.Contains(out, patient1) {
		t.Fatalf("start output:\n%s", out)
	}
	if out := cli("list", "--running"); !strings.Contains(out, "Rééducation") {
		t.Fatalf("list output:\n%s", out)
	}
	if out := cli("invite", "1", "--participant", patient2); !strings.Contains(out, patient2) {
		t.Fatalf("invite output:\n%s", out)
	}
	if out := cli("remove", "1", "--participant", patient2); strings.Contains(out, patient2) {
		t.Fatalf("remove output:\n%s", out)
	}
	if out := cli("show", "1", "--json"); !strings.Contains(out, `"session_invitations"`) {
		t.Fatalf("show --json output:\n%s", out)
	}
	if out := cli("stop", "1"); !strings.Contains(out, "stopped") || !strings.Contains(out, "completed") {
		t.Fatalf("stop output:\n%s", out)
	}
	if out := cli("forget", "1"); !strings.Contains(out, "personal data deleted") || strings.Contains(out, "Rééducation") {
		t.Fatalf("forget output (the title, which may hold names, must go):\n%s", out)
	}
	var errb bytes.Buffer
	err := run(context.Background(), []string{"session", "stop", "1", "--server", ts.service}, &errb, &errb)
	if err == nil || !strings.Contains(err.Error(), "No matching session to stop (HTTP 404)") {
		t.Fatalf("stop of a stopped session: %v", err)
	}
}

// TestKill9KeepsSessions kills the real binary with SIGKILL while a session
// runs and checks that a new process brings it back with working links.
func TestKill9KeepsSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "rehabrtc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := testConfig(t, filepath.Join(dir, "data"), 2)
	b, _ := cfg.JSON()
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, b, 0o600)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ts := &testServer{t: t, service: "http://" + cfg.ServiceAddr()}
		testutil.Eventually(t, 10*time.Second, func() error {
			code, err := httpGet(ts.service + "/healthz")
			return cmp.Or(err, testutil.Until(code == 200, "healthz: HTTP %d", code))
		})
		return cmd
	}
	cmd := start()
	ts := &testServer{t: t, service: "http://" + cfg.ServiceAddr(), gateway: "http://" + cfg.GatewayAddr()}
	_, r := ts.manage(map[string]any{"action": "start", "session_participants": []string{patient1}})
	link := r.Session.link(t, patient1)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cmd = start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if getStatus(t, link) != 200 {
		t.Fatal("link dead after kill -9 and restart")
	}
	p, welcome := join(t, ts.gateway, link, "", "P")
	if welcome["role"] != "participant" {
		t.Fatalf("welcome %v", welcome)
	}
	p.c.Close(1000, "")
}
