package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // coturn's TURN REST scheme
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// target is a running TURN server and one credential per client.
type target struct {
	addr  string // host:port (UDP)
	pid   int
	creds [][2]string // username, password
	stop  func()
}

type starter func(ctx context.Context, o options, clients int) (*target, error)

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// launch starts a server process, pinned with taskset when asked.
func launch(o options, dir string, env []string, name string, args ...string) (*exec.Cmd, error) {
	if o.serverCPU != "" {
		args = append([]string{"-c", o.serverCPU, name}, args...)
		name = "taskset"
	}
	cmd := exec.Command(name, args...)
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, cmd.Start()
}

func stopper(cmd *exec.Cmd, dir string) func() {
	return func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}
}

// startCoturn runs turnserver with the shared-secret scheme and mints
// TURN REST credentials for it.
func startCoturn(ctx context.Context, o options, clients int) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "relaybench-coturn-")
	if err != nil {
		return nil, err
	}
	secretB := make([]byte, 24)
	rand.Read(secretB)
	secret := hex.EncodeToString(secretB)
	conf := fmt.Sprintf("listening-ip=127.0.0.1\nlistening-port=%d\nrelay-ip=127.0.0.1\nmin-port=41000\nmax-port=44999\n"+
		"realm=rehabrtc\nuse-auth-secret\nstatic-auth-secret=%s\nno-tls\nno-dtls\nno-cli\nallow-loopback-peers\n"+
		"pidfile=%s\nno-stdout-log\nlog-file=%s\n",
		port, secret, filepath.Join(dir, "pid"), filepath.Join(dir, "turn.log"))
	path := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd, err := launch(o, dir, nil, "turnserver", "-c", path)
	if err != nil {
		return nil, err
	}
	t := &target{addr: fmt.Sprintf("127.0.0.1:%d", port), pid: cmd.Process.Pid, stop: stopper(cmd, dir)}
	if err := waitTCP(ctx, t.addr); err != nil {
		t.stop()
		return nil, err
	}
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for i := range clients {
		user := exp + ":bench" + strconv.Itoa(i)
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write([]byte(user))
		t.creds = append(t.creds, [2]string{user, base64.StdEncoding.EncodeToString(mac.Sum(nil))})
	}
	return t, nil
}

func waitTCP(ctx context.Context, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing listens on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRehabRTC runs `bin serve`, starts one session with every client as
// a participant and joins each over the WebSocket: the TURN credentials are
// those of the welcome, checked against the live roster like a browser's.
func startRehabRTC(bin string) starter {
	return func(ctx context.Context, o options, clients int) (*target, error) {
		return runRehabRTC(ctx, o, bin, clients)
	}
}

func runRehabRTC(ctx context.Context, o options, bin string, clients int) (*target, error) {
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	dir, err := os.MkdirTemp("", "relaybench-rehabrtc-")
	if err != nil {
		return nil, err
	}
	keyB := make([]byte, 24)
	rand.Read(keyB)
	apiKey := hex.EncodeToString(keyB)
	cfg := map[string]any{
		"Service": map[string]any{"name": "VideoRehabService", "hostname": "127.0.0.1", "port": ports[0]},
		"WebRTC":  map[string]any{"hostname": "127.0.0.1", "external_port": ports[1], "local_base_port": ports[2], "max_sessions": 1},
		"RehabRTC": map[string]any{"data_dir": filepath.Join(dir, "data"), "log_level": "warn",
			"sfu":     map[string]any{"udp_port": 0, "tcp_port": 0}, // free media ports
			"gateway": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", ports[1])},
			"turn": map[string]any{"listen": "127.0.0.1:0", "relay_port_min": 45000, "relay_port_max": 48999,
				"max_allocations_per_peer": 4, "max_allocations_per_session": 4 * clients}},
	}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	cmd, err := launch(o, dir, []string{"REHABRTC_API_KEYS=" + apiKey}, bin, "serve", "--config", path)
	if err != nil {
		return nil, err
	}
	t := &target{pid: cmd.Process.Pid, stop: stopper(cmd, dir)}
	if err := t.rehabCreds(ctx, ports, apiKey, clients); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *target) rehabCreds(ctx context.Context, ports []int, apiKey string, clients int) error {
	api := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	if err := waitTCP(ctx, api[len("http://"):]); err != nil {
		return err
	}
	uuids := make([]string, clients)
	for i := range uuids {
		uuids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
	}
	body, _ := json.Marshal(map[string]any{"session_manage": map[string]any{"action": "start", "id_session": 0,
		"session_participants": uuids, "session_users": []string{}, "session_devices": []string{}}})
	req, _ := http.NewRequestWithContext(ctx, "POST", api+"/api/sessions/manager", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var r struct {
		Session struct {
			Port        int `json:"session_port"`
			Invitations []struct {
				URL string `json:"session_url"`
			} `json:"session_invitations"`
		} `json:"session"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || len(r.Session.Invitations) != clients {
		return fmt.Errorf("start session: HTTP %d, %v", res.StatusCode, err)
	}
	for _, inv := range r.Session.Invitations {
		u, err := url.Parse(inv.URL)
		if err != nil {
			return err
		}
		user, pass, addr, err := joinForCreds(ctx, fmt.Sprintf("ws://127.0.0.1:%d/websocket/%d/", ports[1], r.Session.Port), u.Query().Get("key"))
		if err != nil {
			return err
		}
		t.addr = addr
		t.creds = append(t.creds, [2]string{user, pass})
	}
	return nil
}

// joinForCreds joins once and keeps the embedded server's UDP credential.
// The connection can close: the credential lives as long as the invitee
// stays invited.
func joinForCreds(ctx context.Context, wsURL, key string) (user, pass, addr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		return "", "", "", err
	}
	defer c.CloseNow()
	j, _ := json.Marshal(map[string]string{"type": "join", "key": key})
	if err := c.Write(ctx, websocket.MessageText, j); err != nil {
		return "", "", "", err
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		return "", "", "", err
	}
	var w struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := json.Unmarshal(b, &w); err != nil || len(w.ICEServers) == 0 || len(w.ICEServers[0].URLs) == 0 {
		return "", "", "", fmt.Errorf("welcome without TURN: %s", b)
	}
	s := w.ICEServers[0]
	u := s.URLs[0] // turn:host:port?transport=udp
	hp := u[len("turn:"):]
	if i := bytes.IndexByte([]byte(hp), '?'); i >= 0 {
		hp = hp[:i]
	}
	if s.Username == "" {
		return "", "", "", errors.New("welcome without TURN credentials")
	}
	c.Close(websocket.StatusNormalClosure, "")
	return s.Username, s.Credential, hp, nil
}
