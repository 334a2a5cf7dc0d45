package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Env is what every workload shares: where the binaries are, which CPUs
// the server and the load generator use, and the limits of the run.
type Env struct {
	Bin        string // rehabrtc binary
	Dir        string // scratch directory of this run
	ServerCPUs []int  // nil: not pinned
	LoadCPUs   []int
	Taskset    string // path of taskset, "" = pin with sched_setaffinity
	NoFile     uint64 // RLIMIT_NOFILE given to servers
	LogLevel   string // rehabrtc log level
	Keep       bool   // keep each server's directory (log, data)
	// RateKey: the binary has RehabRTC.peer_rate_limit, which the flood
	// workloads must lift (older binaries refuse the unknown key).
	RateKey bool
	Logf    func(format string, args ...any)
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// PinMode says how processes are pinned, for the report.
func (e *Env) PinMode() string {
	switch {
	case e.ServerCPUs == nil:
		return "not pinned (--pin=false, or fewer than 2 CPUs)"
	case e.Taskset != "":
		return fmt.Sprintf("server CPUs %s (taskset), load generator CPUs %s (sched_setaffinity)", cpuList(e.ServerCPUs), cpuList(e.LoadCPUs))
	}
	return fmt.Sprintf("server CPUs %s, load generator CPUs %s (sched_setaffinity)", cpuList(e.ServerCPUs), cpuList(e.LoadCPUs))
}

// BuildRehabRTC builds ./cmd/rehabrtc of the module at root into dir,
// with the race detector when race is set.
func BuildRehabRTC(ctx context.Context, root, dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "rehabrtc")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/rehabrtc")...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/rehabrtc: %v\n%s", err, out)
	}
	return bin, nil
}

// HasRateKey reports whether bin's default configuration has
// RehabRTC.peer_rate_limit.
func HasRateKey(ctx context.Context, bin string) bool {
	out, err := exec.CommandContext(ctx, bin, "config", "default").Output()
	return err == nil && bytes.Contains(out, []byte(`"peer_rate_limit"`))
}

// ModuleRoot walks up from dir to the go.mod of github.com/rehabrtc/rehabrtc.
func ModuleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/rehabrtc/rehabrtc\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("not inside the rehabrtc module (use --bin)")
		}
	}
}

// freeRange finds n consecutive free loopback ports below the ephemeral
// range, so that client sockets never collide with session ports.
func freeRange(n int) (int, error) {
	for range 50 {
		base := 10000 + rand.IntN(32000-10000-n)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports", n)
}

// apiKey is the API key written into every benchmark config.
const apiKey = "rehabrtc-bench-api-key-0123456789abcdef"

// Server is one rehabrtc process started by the benchmark.
type Server struct {
	env      *Env
	cmd      *exec.Cmd
	Pid      int
	Service  string // http://127.0.0.1:port
	Gateway  string // http://127.0.0.1:port
	GwAddr   string // 127.0.0.1:port
	dataDir  string
	logPath  string
	Started  time.Time
	Ready    time.Duration // start → /readyz 200
	Listen   time.Duration // start → gateway accepts TCP
	waitErr  chan error
	cfg      map[string]any // what it was launched with (a restart reuses it)
	ports    [2]int         // service, gateway
	api      *http.Client
	metricsC *http.Client
}

// ServerOption changes the configuration of a benchmark server.
type ServerOption func(cfg map[string]any)

// ProductLimits keeps the product's default message budget
// (RehabRTC.peer_rate_limit), which the throughput workloads lift: the
// soak measures the service as deployed.
func ProductLimits(cfg map[string]any) {
	delete(cfg["RehabRTC"].(map[string]any), "peer_rate_limit")
}

// ChildRunner runs each session in a child process (OpenTera's
// process-per-session mode with rehabrtc's own child, "rehabrtc signal").
func ChildRunner(cfg map[string]any) {
	cfg["WebRTC"].(map[string]any)["executable"] = "rehabrtc"
}

// StartServer writes a config with room for maxSessions sessions, launches
// rehabrtc pinned to the server CPUs, and waits until /readyz answers 200.
func StartServer(ctx context.Context, env *Env, maxSessions int, opts ...ServerOption) (*Server, error) {
	base, err := freeRange(maxSessions + 2)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(env.Dir, "rehabrtc-")
	if err != nil {
		return nil, err
	}
	cfg := serverConfig(env, dir, base, base+1, base+2, maxSessions)
	for _, o := range opts {
		o(cfg)
	}
	return launchServer(ctx, env, dir, cfg, base, base+1)
}

// serverConfig is a benchmark server's configuration: its service and
// gateway ports, the session ports [sessionBase, sessionBase+maxSessions),
// its data under dir. The links' port is the gateway's.
func serverConfig(env *Env, dir string, service, gateway, sessionBase, maxSessions int) map[string]any {
	cfg := map[string]any{
		"Service": map[string]any{"name": "VideoRehabService", "hostname": "127.0.0.1", "port": service},
		"WebRTC": map[string]any{"hostname": "127.0.0.1", "external_port": gateway,
			"local_base_port": sessionBase, "max_sessions": maxSessions},
		"RehabRTC": map[string]any{
			"data_dir":     filepath.Join(dir, "data"),
			"api_keys":     []string{apiKey},
			"session_bind": "127.0.0.1",
			"gateway":      map[string]any{"enabled": true, "listen": fmt.Sprintf("127.0.0.1:%d", gateway)},
			"log_level":    env.LogLevel,
			// Its own TURN port: two benchmark servers (a cluster's nodes, or
			// two runs at once) never fight over :3478.
			"turn": map[string]any{"listen": "127.0.0.1:0", "relay_ip": "127.0.0.1"},
			"sfu":  map[string]any{"udp_port": 0, "tcp_port": 0}, // its own media ports too
		},
	}
	if env.RateKey {
		cfg["RehabRTC"].(map[string]any)["peer_rate_limit"] = map[string]any{"messages_per_second": 1e9, "burst": 1e9}
	}
	return cfg
}

// launchServer writes cfg into dir, launches rehabrtc serve on it and
// waits until /readyz answers on the service port. A server launched again
// on the same dir (a restart) appends to the same log.
func launchServer(ctx context.Context, env *Env, dir string, cfg map[string]any, service, gateway int) (*Server, error) {
	cfgPath := filepath.Join(dir, "rehabrtc.json")
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	s := &Server{env: env, dataDir: dir, logPath: filepath.Join(dir, "server.log"),
		Service: fmt.Sprintf("http://127.0.0.1:%d", service), GwAddr: fmt.Sprintf("127.0.0.1:%d", gateway),
		waitErr: make(chan error, 1), cfg: cfg, ports: [2]int{service, gateway}}
	s.Gateway = "http://" + s.GwAddr
	s.api = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	s.metricsC = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = launchCmd(env, env.ServerCPUs, nil, env.Bin, "serve", "--config", cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = serverEnv()
	s.Started = time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.Pid = s.cmd.Process.Pid
	if env.ServerCPUs != nil && env.Taskset == "" {
		_ = PinProcess(s.Pid, env.ServerCPUs)
	}
	go func() { s.waitErr <- s.cmd.Wait() }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// serverEnv is the environment of the server: ours, with GOGC and
// GOMEMLIMIT removed so the runtime defaults apply (and are reported).
func serverEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") ||
			strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, "GODEBUG=") ||
			strings.HasPrefix(kv, "REHABRTC_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// launchCmd runs argv through sh so that the open-file limit is raised
// with ulimit and the process is pinned with taskset; both exec, so the
// pid is the program's own.
func launchCmd(env *Env, cpus []int, extraEnv []string, argv ...string) *exec.Cmd {
	var sb strings.Builder
	fmt.Fprintf(&sb, "ulimit -n %d 2>/dev/null; exec", env.NoFile)
	if cpus != nil && env.Taskset != "" {
		fmt.Fprintf(&sb, " %s -c %s", shellQuote(env.Taskset), cpuList(cpus))
	}
	for _, a := range argv {
		sb.WriteString(" " + shellQuote(a))
	}
	cmd := exec.Command("/bin/sh", "-c", sb.String())
	// Own process group (a Ctrl-C reaches only the benchmark, which stops
	// its servers in order); killed if the benchmark dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), extraEnv...)
	return cmd
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	poll := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer poll.CloseIdleConnections()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case err := <-s.waitErr:
			s.waitErr <- err
			return fmt.Errorf("rehabrtc exited during start-up (%v): %s", err, s.LogTail())
		default:
		}
		if s.Listen == 0 {
			if c, err := net.DialTimeout("tcp", s.GwAddr, 100*time.Millisecond); err == nil {
				s.Listen = time.Since(s.Started)
				c.Close()
			}
		}
		if s.Listen != 0 {
			if resp, err := poll.Get(s.Service + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					s.Ready = time.Since(s.Started)
					return nil
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("rehabrtc not ready within 20 s: %s", s.LogTail())
}

// LogTail returns the end of the server's log, for error messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Stop ends the server (SIGTERM, then SIGKILL after 15 s) and removes its
// data directory.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.api.CloseIdleConnections()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-s.waitErr:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		err = <-s.waitErr
		err = fmt.Errorf("rehabrtc did not stop within 15 s of SIGTERM (%v)", err)
	}
	s.cmd = nil
	if !s.env.Keep {
		os.RemoveAll(s.dataDir)
	}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == 0 {
		err = nil
	}
	return err
}

func (s *Server) cpuTicks() int64 { return cpuTicksOr0(s.Pid) }

func (s *Server) check() error {
	if !s.Alive() {
		return fmt.Errorf("server died: %s", s.LogTail())
	}
	return nil
}

// Kill ends the server with SIGKILL (a crash: no drain, no lease
// released) and keeps its directory for a restart.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.api.CloseIdleConnections()
	_ = s.cmd.Process.Kill()
	<-s.waitErr
	s.waitErr <- errors.New("killed")
	s.cmd = nil
}

// Restart launches a server again on the configuration and directory of
// s, which must have stopped (Kill).
func (s *Server) Restart(ctx context.Context) (*Server, error) {
	return launchServer(ctx, s.env, s.dataDir, s.cfg, s.ports[0], s.ports[1])
}

// Alive reports whether the server process still runs.
func (s *Server) Alive() bool {
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		return false
	default:
		return true
	}
}

// Proc reads the server's /proc figures, and from /metrics its goroutine
// count and Go heap and stack in use.
func (s *Server) Proc() (ProcStats, error) {
	st, err := ReadProc(s.Pid)
	if err != nil {
		return st, err
	}
	m, err := s.metrics("go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_heap_alloc_bytes")
	if err == nil {
		st.Goroutine = int(m[0])
		st.HeapInuse, st.StackInuse, st.HeapAlloc = int64(m[1]), int64(m[2]), int64(m[3])
	}
	return st, nil
}

// Quiet closes the benchmark's idle HTTP connections to the server and
// waits until the server's open files stop changing, so fd and goroutine
// counts are not inflated by the benchmark's own keep-alive connections.
func (s *Server) Quiet(max time.Duration) {
	s.api.CloseIdleConnections()
	deadline := time.Now().Add(max)
	last := -1
	for time.Now().Before(deadline) {
		st, err := ReadProc(s.Pid)
		if err != nil {
			return
		}
		if st.FDs == last {
			return
		}
		last = st.FDs
		time.Sleep(100 * time.Millisecond)
	}
}

// Goroutines reads go_goroutines from /metrics (the scrape's own request
// goroutine is included, as it is in every reading).
func (s *Server) Goroutines() (int, error) {
	v, err := s.metric("go_goroutines")
	return int(v), err
}

func (s *Server) metric(name string) (float64, error) {
	v, err := s.metrics(name)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// metrics reads several unlabelled metrics from one scrape of /metrics.
func (s *Server) metrics(names ...string) ([]float64, error) {
	resp, err := s.metricsC.Get(s.Service + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make([]float64, len(names))
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for i, name := range names {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				out[i], err = strconv.ParseFloat(strings.TrimSpace(rest), 64)
				if err != nil {
					return nil, err
				}
				found++
			}
		}
	}
	if found < len(names) {
		return nil, fmt.Errorf("metrics %v: only %d found", names, found)
	}
	return out, sc.Err()
}

// Session is a started session as the benchmark needs it.
type Session struct {
	ID              int64  `json:"id_session"`
	Port            int    `json:"session_port"`
	URLUsers        string `json:"session_url_users"`
	URLParticipants string `json:"session_url_participants"`
	Invitations     []struct {
		Kind string `json:"kind"`
		UUID string `json:"uuid"`
		URL  string `json:"session_url"`
	} `json:"session_invitations"`
}

// Link returns the personal link of uuid.
func (s *Session) Link(uuid string) string {
	for _, inv := range s.Invitations {
		if inv.UUID == uuid {
			return inv.URL
		}
	}
	return ""
}

// KeyOf extracts key= from a session link.
func KeyOf(link string) string {
	_, k, _ := strings.Cut(link, "key=")
	k, _, _ = strings.Cut(k, "&")
	return k
}

// StartSession runs session_manage start for a new session.
func (s *Server) StartSession(ctx context.Context, users, participants []string) (*Session, error) {
	body := map[string]any{"session_manage": map[string]any{
		"action": "start", "id_session": 0, "id_session_type": 1,
		"session_users": users, "session_participants": participants, "session_devices": []string{},
		"session_creator_user_uuid": first(users),
	}}
	var r struct {
		Status    string  `json:"status"`
		ErrorText string  `json:"error_text"`
		Session   Session `json:"session"`
	}
	if err := s.post(ctx, body, &r); err != nil {
		return nil, err
	}
	if r.Status != "started" {
		return nil, fmt.Errorf("start: %s %s", r.Status, r.ErrorText)
	}
	return &r.Session, nil
}

// StopSession runs session_manage stop.
func (s *Server) StopSession(ctx context.Context, id int64) error {
	var r struct {
		Status    string `json:"status"`
		ErrorText string `json:"error_text"`
	}
	if err := s.post(ctx, map[string]any{"session_manage": map[string]any{"action": "stop", "id_session": id}}, &r); err != nil {
		return err
	}
	if r.Status != "stopped" {
		return fmt.Errorf("stop %d: %s %s", id, r.Status, r.ErrorText)
	}
	return nil
}

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

func (s *Server) post(ctx context.Context, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Service+"/api/sessions/manager", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("session_manage: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

// GetPage fetches a session link (through the gateway) and returns the status.
func (s *Server) GetPage(ctx context.Context, link string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.api.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// WSAddr is where clients dial: the gateway, as browsers do.
func (s *Server) WSAddr() string { return s.GwAddr }

// PortOf returns the session port of a link (/webrtc/{port}/…).
func PortOf(link string) int {
	_, rest, ok := strings.Cut(link, "/webrtc/")
	if !ok {
		return 0
	}
	p, _, _ := strings.Cut(rest, "/")
	n, _ := strconv.Atoi(p)
	return n
}

// NewUUID returns a random version-4 UUID.
func NewUUID() string {
	var b [16]byte
	for i := range 2 {
		v := rand.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Children lists the pids whose parent is pid.
func Children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}
