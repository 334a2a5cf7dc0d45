package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// netnsEnv marks the test binary re-run inside a network namespace.
const netnsEnv = "REHABRTC_TEST_NETNS"

// inNetNS runs test `name` again in a child of this test binary that has a
// network namespace of its own (unnamed: the kernel removes it when the
// child exits, even on failure), so that the test may use OpenTera's fixed
// ports (6379, 40075, 4070, 8080) without meeting anything else on this
// machine. It reports whether the caller is that child.
func inNetNS(t *testing.T, name string) bool {
	if os.Getenv(netnsEnv) != "" {
		return true
	}
	testutil.Tool(t, "redis-server", "OpenTera's Redis")
	testutil.Tool(t, "node", "the sessions' server.js")
	testutil.Tool(t, "ip", "loopback up in the test's network namespace")
	args := []string{"-test.run=^" + name + "$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if uid, gid := os.Geteuid(), os.Getegid(); uid != 0 {
		// Unprivileged: a user namespace of its own, where this user is
		// root, may have a network namespace (where the kernel allows it).
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) {
		testutil.Missing(t, fmt.Sprintf("cannot create a network namespace (root, or unprivileged user namespaces, needed): %v", err))
	}
	if err != nil {
		t.Fatalf("in its network namespace: %v\n%s", err, out)
	}
	t.Logf("in its network namespace:\n%s", out)
	return false
}

const (
	dropUser  = "aaaaaaaa-0000-4000-8000-000000000001"
	dropPart  = "bbbbbbbb-0000-4000-8000-000000000001"
	dropPart2 = "bbbbbbbb-0000-4000-8000-000000000002"
)

// TestOpenTeraDropIn runs `rehabrtc serve --config VideoRehabService.json`
// with OpenTera's file exactly as OpenTera ships it, in OpenTera's layout
// (the sessions run OpenTera's server.js from ../../../easyrtc), with a
// real redis-server on 6379 and, on 40075 (the port OpenTera's nginx holds
// and answers the main server's API on), an HTTPS main-server double: the
// main server itself needs its database and Flask stack, which cannot run
// here. Every session_manage action goes through the Redis RPC as the
// main server sends it, and each reply is compared with OpenTera's shapes
// field by field. First, with a certificate from a CA the host does not
// trust, the start-up stops at once, in one line naming Backend.ca_file.
func TestOpenTeraDropIn(t *testing.T) {
	if !inNetNS(t, "TestOpenTeraDropIn") {
		return
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v %s", err, out)
	}
	file, err := os.ReadFile("testdata/VideoRehabService.json")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	svcDir := filepath.Join(root, "teraserver", "python", "services", "VideoRehabService")
	easy := filepath.Join(root, "teraserver", "easyrtc")
	for _, d := range []string{svcDir, easy} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(svcDir, "VideoRehabService.json"), file, 0o644)
	os.WriteFile(filepath.Join(easy, "server.js"), []byte(teratest.ServerJS), 0o644)
	trusted := teratest.NewCA(t, "OpenTera operator CA")
	t.Setenv("SSL_CERT_FILE", trusted.WritePEM(t, root)) // the host's trust store, before any TLS
	tmp := filepath.Join(root, "tmp")                    // the EasyRTC children's preload files, apart from other tests'
	os.Mkdir(tmp, 0o700)
	t.Setenv("TMPDIR", tmp)
	r := teratest.StartRedisOn(t, 6379)
	r.Set(opentera.ServiceTokenKey, otSecret)
	r.SetService("VideoRehabService", otServiceUUID, "127.0.0.1", 4070)
	t.Chdir(svcDir)
	serveArgs := []string{"serve", "--config", "VideoRehabService.json"}

	t.Run("untrusted main server: fail fast", func(t *testing.T) {
		rogue := teratest.NewCA(t, "self-signed")
		m := teratest.StartMainServerOn(t, otServiceUUID, otSecret, "127.0.0.1:40075", rogue.Issue(t, "127.0.0.1"))
		defer m.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		err := run(ctx, serveArgs, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "set Backend.ca_file") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("serve: %v, want one line naming Backend.ca_file", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("failed after %v, not at once", d)
		}
	})

	m := teratest.StartMainServerOn(t, otServiceUUID, otSecret, "127.0.0.1:40075", trusted.Issue(t, "127.0.0.1"))
	m.Users[1] = teratest.Named{UUID: dropUser, Name: "Dr Tremblay"}
	logs := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, serveArgs, io.Discard, logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs)
		}
	}()
	waitReady(t, "http://127.0.0.1:4070/readyz", done, logs)
	if got := listeningPorts(t); !slices.Equal(got, []int{3478, 4070, 6379, 40075}) {
		t.Fatalf("listening ports %v, want 3478 (rehabrtc's TURN), 4070 (rehabrtc), 6379 (Redis), 40075 (nginx): no gateway of its own", got)
	}

	rpc := teratest.NewRPCClient(r.Client)
	manage := func(fields map[string]any) map[string]any {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"session_manage": fields})
		env, err := rpc.Call(context.Background(), "VideoRehabService", "session_manage", 10*time.Second, string(body))
		if err != nil || env.Status != "OK" {
			t.Fatalf("%v: %+v %v", fields["action"], env, err)
		}
		var out map[string]any
		if err := json.Unmarshal(env.ReturnValue, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	// start, as UserSessionManager forwards a user's request.
	rep := manage(map[string]any{"action": "start", "id_service": 3, "id_session": 0, "id_session_type": 1,
		"id_creator_user": 1, "session_participants": []string{dropPart}, "session_users": []string{dropUser},
		"session_devices": []string{}, "parameters": map[string]any{"recordable": true}})
	s := runningShape(t, m, rep, "started", []string{dropUser}, []string{dropPart})
	if got := listeningPorts(t); !slices.Equal(got, []int{3478, 4070, 6379, 8080, 40075}) {
		t.Fatalf("listening ports %v, want the session on the pool's first port, 8080", got)
	}
	if body := getBody(t, "http://127.0.0.1:8080/participants?key="+keyOf(inviteLink(t, s, dropPart)), 200); body != "page participants with a key: true" {
		t.Fatalf("the participant's page on 8080: %q", body)
	}

	rep = manage(map[string]any{"action": "invite", "id_session": 1, "session_users": []string{},
		"session_participants": []string{dropPart2}, "session_devices": []string{}})
	runningShape(t, m, rep, "invited", []string{dropUser}, []string{dropPart, dropPart2})
	rep = manage(map[string]any{"action": "remove", "id_session": 1, "session_users": []string{},
		"session_participants": []string{dropPart}, "session_devices": []string{}})
	runningShape(t, m, rep, "removed", []string{dropUser}, []string{dropPart2})
	rep = manage(map[string]any{"action": "invite_reply", "id_session": 1, "id_creator_user": 1,
		"parameters": map[string]any{"reply_code": 1, "user_uuid": dropUser}})
	runningShape(t, m, rep, "OK", []string{dropUser}, []string{dropPart2})
	for _, code := range []any{0, 5, -1, 1.5, "maybe", "1", nil} {
		rep = manage(map[string]any{"action": "invite_reply", "id_session": 1,
			"parameters": map[string]any{"reply_code": code, "participant_uuid": dropPart2}})
		if rep["status"] != "error" || !strings.HasPrefix(rep["error_text"].(string), "parameters.reply_code: ") {
			t.Errorf("reply_code %v: %v, want an error", code, rep)
		}
	}

	// stop answers the main server's JSON of the session, as OpenTera's.
	rep = manage(map[string]any{"action": "stop", "id_session": 1})
	if rep["status"] != "stopped" || !reflect.DeepEqual(rep["session"], m.SessionJSON(1)) {
		t.Fatalf("stop: %v\nwant the main server's %v", rep, m.SessionJSON(1))
	}
	if got := listeningPorts(t); !slices.Equal(got, []int{3478, 4070, 6379, 40075}) {
		t.Fatalf("listening ports %v after stop", got)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Fatalf("files left in TMPDIR: %v", left)
	}
}

// The keys of OpenTera's session_info (spec §3.3): TeraSession.to_json()
// for a session created by a user, then what the service adds.
var (
	teraColumns = []string{"id_creator_device", "id_creator_participant", "id_creator_service", "id_creator_user",
		"id_session", "id_session_type", "session_comments", "session_duration", "session_name", "session_parameters",
		"session_start_datetime", "session_status", "session_uuid", "session_participants", "session_users",
		"session_devices", "session_creator_user", "session_creator_user_uuid", "session_assets_count", "session_tests_count"}
	teraRuntime = []string{"session_events", "session_key", "session_creator_uuid", "session_url_users",
		"session_url_participants", "session_url_devices"}
	// rehabrtc's own, listed in docs/opentera.md.
	rehabExtras = []string{"session_invitations", "session_port", "session_peers"}
	teraEvent   = []string{"id_session", "id_session_event", "id_session_event_type", "session_event_context",
		"session_event_datetime", "session_event_text"}
	isoformatRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d$`)
	urlRE       = regexp.MustCompile(`^https://127\.0\.0\.1:40075/webrtc/8080/(users|participants|devices)\?key=[A-Za-z0-9_-]{22,}$`)
)

// runningShape checks a reply carrying a running session against
// OpenTera's session_info, field by field, and returns the session.
func runningShape(t *testing.T, m *teratest.MainServer, rep map[string]any, status string, users, parts []string) map[string]any {
	t.Helper()
	s, _ := rep["session"].(map[string]any)
	if rep["status"] != status || s == nil {
		t.Fatalf("reply %v, want status %q with a session", rep, status)
	}
	var extra []string
	for k := range s {
		if !slices.Contains(teraColumns, k) && !slices.Contains(teraRuntime, k) {
			extra = append(extra, k)
		}
	}
	for _, k := range append(slices.Clone(teraColumns), teraRuntime...) {
		if _, ok := s[k]; !ok {
			t.Errorf("%s: no %s", status, k)
		}
	}
	for _, k := range extra {
		if !slices.Contains(rehabExtras, k) {
			t.Errorf("%s: unexpected %s", status, k)
		}
	}
	row := m.SessionJSON(1)
	for _, k := range []string{"id_creator_device", "id_creator_participant", "id_creator_service", "id_creator_user",
		"id_session", "id_session_type", "session_comments", "session_name", "session_parameters",
		"session_start_datetime", "session_status", "session_uuid", "session_creator_user",
		"session_creator_user_uuid", "session_assets_count", "session_tests_count", "session_duration"} {
		if !reflect.DeepEqual(s[k], row[k]) {
			t.Errorf("%s: %s = %#v, the main server's is %#v", status, k, s[k], row[k])
		}
	}
	for k, want := range map[string][]string{"session_users": users, "session_participants": parts, "session_devices": {}} {
		if got := jsonStrings(s[k]); !slices.Equal(got, want) {
			t.Errorf("%s: %s = %v, want the uuids %v", status, k, s[k], want)
		}
	}
	events, _ := s["session_events"].([]any)
	if len(events) == 0 {
		t.Errorf("%s: no session_events", status)
	}
	for _, e := range events {
		ev, _ := e.(map[string]any)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range ev {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, teraEvent) || ev["session_event_context"] != "VideoRehabService" ||
			!isoformatRE.MatchString(fmt.Sprint(ev["session_event_datetime"])) {
			t.Errorf("%s: event %v", status, ev)
		}
	}
	if s["session_creator_uuid"] != dropUser || s["session_key"] == "" {
		t.Errorf("%s: session_creator_uuid %v, session_key %v", status, s["session_creator_uuid"], s["session_key"])
	}
	for _, k := range []string{"session_url_users", "session_url_participants", "session_url_devices"} {
		if !urlRE.MatchString(fmt.Sprint(s[k])) {
			t.Errorf("%s: %s = %v", status, k, s[k])
		}
	}
	if !isoformatRE.MatchString(fmt.Sprint(s["session_start_datetime"])) {
		t.Errorf("%s: session_start_datetime %v", status, s["session_start_datetime"])
	}
	return s
}

func jsonStrings(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// inviteLink is the personal link of uuid in a session's session_invitations.
func inviteLink(t *testing.T, s map[string]any, uuid string) string {
	t.Helper()
	invs, _ := s["session_invitations"].([]any)
	for _, x := range invs {
		if inv, _ := x.(map[string]any); inv["uuid"] == uuid {
			return inv["session_url"].(string)
		}
	}
	t.Fatalf("no invitation for %s", uuid)
	return ""
}

// waitReady polls url until it answers 200, failing if serve ends first.
func waitReady(t *testing.T, url string, done <-chan error, logs fmt.Stringer) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, logs)
		default:
		}
		code, err := httpGet(url)
		if err != nil {
			return err
		}
		return testutil.Until(code == http.StatusOK, "%s answers %d\n%s", url, code, logs)
	})
}

// listeningPorts lists the TCP ports listened on in this network
// namespace, from /proc/net/tcp and tcp6.
func listeningPorts(t *testing.T) []int {
	t.Helper()
	var ports []int
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && !slices.Contains(ports, int(p)) {
				ports = append(ports, int(p))
			}
		}
		fh.Close()
	}
	slices.Sort(ports)
	return ports
}
