package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// server is one rehabrtc process.
type server struct {
	t       *testing.T
	args    []string // extra serve flags
	env     []string // extra environment variables
	dir     string
	cfgPath string
	service string // http://127.0.0.1:port
	gateway string
	cmd     *exec.Cmd
	out     *testutil.Buffer
	exited  chan struct{}
}

// buildBinary builds ./cmd/rehabrtc once for the whole run, unless $REHABRTC_BIN names a binary.
func buildBinary(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		if b := os.Getenv("REHABRTC_BIN"); b != "" { // test a binary built elsewhere
			binary = b
			return
		}
		build := exec.Command("go", "build", "-o", binary, "./cmd/rehabrtc")
		build.Dir = root
		out, err := build.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/rehabrtc: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// startServer writes a config with free ports and runs `rehabrtc serve` until the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with edit applied to the RehabRTC section of the config first,
// and extra serve flags.
func startServerWith(t *testing.T, edit func(rehabRTC map[string]any), args ...string) *server {
	t.Helper()
	return startServerEnv(t, edit, nil, args...)
}

// startServerEnv is startServerWith with extra environment variables (secrets stay off the command line).
func startServerEnv(t *testing.T, edit func(rehabRTC map[string]any), env []string, args ...string) *server {
	t.Helper()
	buildBinary(t)
	const maxSessions = 5
	base := testutil.FreePorts(t, maxSessions+2)
	dir := t.TempDir()
	cfg := map[string]any{
		"Service": map[string]any{"name": "VideoRehabService", "hostname": "127.0.0.1", "port": base},
		"WebRTC": map[string]any{
			"hostname": "127.0.0.1", "external_port": base + 1, "local_base_port": base + 2, "max_sessions": maxSessions,
		},
		"RehabRTC": map[string]any{
			"data_dir": dir, "api_keys": []string{apiKey}, "url_scheme": "http",
			"gateway": map[string]any{"enabled": true, "listen": fmt.Sprintf("127.0.0.1:%d", base+1)},
			"turn":    map[string]any{"listen": "127.0.0.1:0"},      // a free port; welcome.iceServers says which
			"sfu":     map[string]any{"udp_port": 0, "tcp_port": 0}, // free media ports: tests run side by side
		},
	}
	if edit != nil {
		edit(cfg["RehabRTC"].(map[string]any))
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	s := &server{
		t: t, dir: dir, cfgPath: filepath.Join(dir, "config.json"), args: args, env: env,
		service: fmt.Sprintf("http://127.0.0.1:%d", base), gateway: fmt.Sprintf("http://127.0.0.1:%d", base+1),
	}
	if err := os.WriteFile(s.cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.out = &testutil.Buffer{}
	s.cmd = exec.Command(binary, append([]string{"serve", "--config", s.cfgPath}, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if s.env != nil {
		s.cmd.Env = append(os.Environ(), s.env...)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.exited)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(s.service + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-s.exited:
			s.t.Fatalf("rehabrtc exited at start:\n%s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("rehabrtc not healthy after 15 s:\n%s", s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server with SIGTERM (then SIGKILL after 10 s).
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("rehabrtc did not stop on SIGTERM within 10 s")
	}
	if s.t.Failed() {
		s.t.Logf("server output:\n%s", s.out.String())
	}
}

// kill ends the server at once, as a crash would.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// api calls the HTTP API and decodes the JSON answer into out (may be nil); it returns the status.
func (s *server) api(method, path string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.service+path, rd)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// Session is the part of the API's session object the tests use.
type Session struct {
	ID          int64  `json:"id_session"`
	Name        string `json:"session_name"`
	Status      int    `json:"session_status"`
	Port        int    `json:"session_port"`
	Invitations []struct {
		Kind string `json:"kind"`
		UUID string `json:"uuid"`
		URL  string `json:"session_url"`
	} `json:"session_invitations"`
	Peers []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		UUID string `json:"uuid"`
		Role string `json:"role"`
	} `json:"session_peers"`
}

// link is the personal link of one invitee.
func (s Session) link(t *testing.T, uuid string) string {
	t.Helper()
	for _, inv := range s.Invitations {
		if inv.UUID == uuid {
			return inv.URL
		}
	}
	t.Fatalf("no invitation for %s in %+v", uuid, s.Invitations)
	return ""
}

// manage runs one session_manage action and returns the session it answers.
func (s *server) manage(action string, id int64, users, participants []string, devices ...string) Session {
	s.t.Helper()
	m := map[string]any{
		"action": action, "id_session": id, "session_users": nonNil(users),
		"session_participants": nonNil(participants), "session_devices": nonNil(devices),
	}
	if action == "start" && len(users) > 0 {
		m["session_creator_user_uuid"] = users[0]
	}
	var res struct {
		Status    string  `json:"status"`
		ErrorText string  `json:"error_text"`
		Session   Session `json:"session"`
	}
	if code := s.api("POST", "/api/sessions/manager", map[string]any{"session_manage": m}, &res); code != 200 {
		s.t.Fatalf("%s: HTTP %d %s", action, code, res.ErrorText)
	}
	return res.Session
}

func (s *server) session(id int64) Session {
	s.t.Helper()
	var out Session
	if code := s.api("GET", fmt.Sprintf("/api/sessions/%d", id), nil, &out); code != 200 {
		s.t.Fatalf("GET session %d: HTTP %d", id, code)
	}
	return out
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
