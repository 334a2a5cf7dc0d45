package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Easy runs the open-easyrtc side: server.js processes (one per session,
// as OpenTera does) and adapter.mjs, which drives them with
// socket.io-client and reports JSON lines.
type Easy struct {
	Dir  string // bench/easyrtc, with node_modules installed
	Node string // node binary
	Log  string // EasyRTC log level of server.js
}

// FindEasy returns the EasyRTC side if dir has its npm dependencies and
// node is on PATH; the error says why not.
func FindEasy(dir string) (*Easy, error) {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "open-easyrtc", "package.json")); err != nil {
		return nil, fmt.Errorf("%s/node_modules missing (run npm ci there, or bench/run.sh)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node not found on PATH")
	}
	return &Easy{Dir: dir, Node: node, Log: "warning"}, nil
}

// NodeVersion reports `node --version`.
func (e *Easy) NodeVersion() string {
	out, err := exec.Command(e.Node, "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// EasyServer is one server.js process: one OpenTera session.
type EasyServer struct {
	cmd     *exec.Cmd
	Pid     int
	Port    int
	Key     string
	Listen  time.Duration // spawn → TCP accept
	Ready   time.Duration // spawn → /users?key= answers 200
	waitErr chan error
	stderr  *tailBuffer
}

// StartEasy spawns server.js on a free port, pinned to the server CPUs,
// and waits until the session page answers 200 (polling every 2 ms, as
// OpenTera's clients poll the link).
func (e *Easy) StartEasy(ctx context.Context, env *Env, port int) (*EasyServer, error) {
	if port == 0 {
		p, err := freeRange(1)
		if err != nil {
			return nil, err
		}
		port = p
	}
	s := &EasyServer{Port: port, Key: NewUUID(), waitErr: make(chan error, 1), stderr: &tailBuffer{}}
	s.cmd = launchCmd(env, env.ServerCPUs, nil, e.Node, filepath.Join(e.Dir, "server.js"),
		"--port="+strconv.Itoa(port), "--key="+s.Key, "--log="+e.Log)
	s.cmd.Dir = e.Dir
	s.cmd.Stdout = io.Discard
	s.cmd.Stderr = s.stderr
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.Pid = s.cmd.Process.Pid
	if env.ServerCPUs != nil && env.Taskset == "" {
		_ = PinProcess(s.Pid, env.ServerCPUs)
	}
	go func() { s.waitErr <- s.cmd.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	page := fmt.Sprintf("http://%s/users?key=%s", addr, s.Key)
	poll := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer poll.CloseIdleConnections()
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case err := <-s.waitErr:
			s.waitErr <- err
			return nil, fmt.Errorf("server.js exited (%v): %s", err, s.stderr.String())
		default:
		}
		if s.Listen == 0 {
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				s.Listen = time.Since(t0)
				c.Close()
			}
		}
		if s.Listen != 0 {
			if resp, err := poll.Get(page); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					s.Ready = time.Since(t0)
					return s, nil
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.Kill()
	return nil, fmt.Errorf("server.js not ready within 30 s: %s", s.stderr.String())
}

// Kill ends the process with SIGKILL, as OpenTera's stop does.
func (s *EasyServer) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.waitErr
	s.cmd = nil
}

// Alive reports whether the process still runs.
func (s *EasyServer) Alive() bool {
	select {
	case err := <-s.waitErr:
		s.waitErr <- err
		return false
	default:
		return true
	}
}

// URL and Path are what socket.io-client needs.
func (s *EasyServer) URL() string  { return fmt.Sprintf("http://127.0.0.1:%d", s.Port) }
func (s *EasyServer) Path() string { return fmt.Sprintf("/websocket/%d/", s.Port) }

// tailBuffer keeps the last 4 kB written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// adapter is one running adapter.mjs.
type adapter struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan map[string]json.RawMessage
	done   chan error
	stderr *tailBuffer
}

// runAdapter starts adapter.mjs with a workload against srv, pinned to the
// load generator's CPUs.
func (e *Easy) runAdapter(env *Env, srv *EasyServer, workload string, args ...string) (*adapter, error) {
	argv := append([]string{e.Node, filepath.Join(e.Dir, "adapter.mjs"), workload,
		"--url=" + srv.URL(), "--path=" + srv.Path()}, args...)
	a := &adapter{lines: make(chan map[string]json.RawMessage, 16), done: make(chan error, 1), stderr: &tailBuffer{}}
	a.cmd = launchCmd(env, env.LoadCPUs, nil, argv...)
	a.cmd.Dir = e.Dir
	a.cmd.Stderr = a.stderr
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if a.stdin, err = a.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	if env.LoadCPUs != nil && env.Taskset == "" {
		_ = PinProcess(a.cmd.Process.Pid, env.LoadCPUs)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				a.lines <- m
			}
		}
		close(a.lines)
		a.done <- a.cmd.Wait()
	}()
	return a, nil
}

// next waits for the next line with event ev ("result" also accepts an
// "error" line, returned as an error).
func (a *adapter) next(ctx context.Context, ev string, timeout time.Duration) (map[string]json.RawMessage, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-a.lines:
			if !ok {
				err := <-a.done
				a.done <- err
				return nil, fmt.Errorf("adapter exited (%v) before %q: %s", err, ev, a.stderr.String())
			}
			var got string
			_ = json.Unmarshal(m["event"], &got)
			if got == "error" {
				var msg string
				_ = json.Unmarshal(m["message"], &msg)
				return nil, fmt.Errorf("adapter: %s", msg)
			}
			if got == ev {
				return m, nil
			}
		case <-t.C:
			a.kill()
			return nil, fmt.Errorf("adapter: no %q within %v", ev, timeout)
		case <-ctx.Done():
			a.kill()
			return nil, errStopped
		}
	}
}

func (a *adapter) kill() {
	_ = a.cmd.Process.Kill()
}

// wait reaps the adapter.
func (a *adapter) wait() {
	for range a.lines {
	}
	<-a.done
}

// result runs a one-shot workload and decodes its result line into out.
func (e *Easy) result(ctx context.Context, env *Env, srv *EasyServer, timeout time.Duration, out any, workload string, args ...string) error {
	a, err := e.runAdapter(env, srv, workload, append(args, fmt.Sprintf("--timeout=%d", timeout.Milliseconds()))...)
	if err != nil {
		return err
	}
	defer a.wait()
	m, err := a.next(ctx, "result", timeout+5*time.Second)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(m)
	return json.Unmarshal(b, out)
}

// EasyW0 starts server.js W0Runs times.
func (e *Easy) EasyW0(ctx context.Context, env *Env, o Options) (W0Result, error) {
	var runs []W0Run
	for range o.W0Runs {
		s, err := e.StartEasy(ctx, env, 0)
		if err != nil {
			return W0Result{}, err
		}
		if err := sleepCtx(ctx, o.W0Settle); err != nil {
			s.Kill()
			return W0Result{}, err
		}
		st, err := ReadProc(s.Pid)
		s.Kill()
		if err != nil {
			return W0Result{}, err
		}
		runs = append(runs, W0Run{ListenMs: ms(s.Listen), ReadyMs: ms(s.Ready), IdleRSSkB: st.RSSkB, HWMkB: st.HWMkB,
			Threads: st.Threads, FDs: st.FDs})
	}
	return summarizeW0(runs), nil
}

// EasyW1 is OpenTera's session start: one server.js per session, timed
// from spawn until the session link answers 200. At most W1EasySessions
// run at once (OpenTera's port pool); when the pool is full the oldest is
// killed. The RSS of an idle session is read when the pool is first full.
func (e *Easy) EasyW1(ctx context.Context, env *Env, o Options) (W1Result, error) {
	n, pool := o.W1Sessions, max(1, o.W1EasySessions)
	var alive []*EasyServer
	defer func() {
		for _, s := range alive {
			s.Kill()
		}
	}()
	starts := make([]time.Duration, 0, n)
	var perSession float64
	measured := false
	measure := func() error {
		if err := sleepCtx(ctx, o.W0Settle); err != nil {
			return err
		}
		var sum int64
		for _, s := range alive {
			st, err := ReadProc(s.Pid)
			if err != nil {
				return err
			}
			sum += st.RSSkB
		}
		perSession = round3(float64(sum) / float64(len(alive)))
		measured = true
		return nil
	}
	for i := range n {
		if len(alive) == pool {
			if !measured {
				if err := measure(); err != nil {
					return W1Result{}, err
				}
			}
			alive[0].Kill()
			alive = alive[1:]
		}
		s, err := e.StartEasy(ctx, env, 0)
		if err != nil {
			return W1Result{}, fmt.Errorf("session %d: %w", i, err)
		}
		alive = append(alive, s)
		starts = append(starts, s.Ready)
	}
	if !measured {
		if err := measure(); err != nil {
			return W1Result{}, err
		}
	}
	return W1Result{Sessions: n, Start: Summarize(starts), PerSessionkB: perSession}, nil
}

// EasyW2 measures joins and call setups against one server.js.
func (e *Easy) EasyW2(ctx context.Context, env *Env, o Options) (W2Result, error) {
	res := W2Result{Concurrent: o.W2Concurrent, Calls: o.W2Calls, Candidates: o.W2Candidates}
	s, err := e.StartEasy(ctx, env, 0)
	if err != nil {
		return res, err
	}
	defer s.Kill()
	var r struct {
		Seq  Dist `json:"join_sequential"`
		Conc Dist `json:"join_concurrent"`
		Call Dist `json:"call_setup"`
	}
	if err := e.result(ctx, env, s, 3*time.Minute, &r, "join", fmt.Sprintf("--n=%d", o.W2Joins)); err != nil {
		return res, err
	}
	if err := e.result(ctx, env, s, 3*time.Minute, &r, "joinc", fmt.Sprintf("--n=%d", min(o.W2Concurrent, 100))); err != nil {
		return res, err
	}
	if err := e.result(ctx, env, s, 5*time.Minute, &r, "call", fmt.Sprintf("--n=%d", o.W2Calls), fmt.Sprintf("--candidates=%d", o.W2Candidates)); err != nil {
		return res, err
	}
	res.JoinSeq, res.JoinConc, res.Call = r.Seq, r.Conc, r.Call
	if !s.Alive() {
		return res, errors.New("server.js died during W2")
	}
	return res, nil
}

// EasyW3 holds N idle socket.io clients (W3PerSession per room) on one
// server.js.
func (e *Easy) EasyW3(ctx context.Context, env *Env, o Options) (W3Result, error) {
	var res W3Result
	for _, n := range o.W3Sizes {
		if uint64(n)+200 > env.NoFile {
			res.Sizes = append(res.Sizes, W3Size{Peers: n, Skipped: fmt.Sprintf("open-file limit %d too low", env.NoFile)})
			continue
		}
		sz, err := e.idle(ctx, env, o, n)
		if err != nil {
			return res, fmt.Errorf("%d peers: %w", n, err)
		}
		res.Sizes = append(res.Sizes, sz)
	}
	return res, nil
}

func (e *Easy) idle(ctx context.Context, env *Env, o Options, n int) (W3Size, error) {
	s, err := e.StartEasy(ctx, env, 0)
	if err != nil {
		return W3Size{}, err
	}
	defer s.Kill()
	if err := sleepCtx(ctx, o.W3Settle); err != nil {
		return W3Size{}, err
	}
	before, err := ReadProc(s.Pid)
	if err != nil {
		return W3Size{}, err
	}
	a, err := e.runAdapter(env, s, "idle", fmt.Sprintf("--n=%d", n), fmt.Sprintf("--per-room=%d", o.W3PerSession))
	if err != nil {
		return W3Size{}, err
	}
	defer a.wait()
	defer a.kill()
	m, err := a.next(ctx, "ready", 10*time.Minute)
	if err != nil {
		return W3Size{}, err
	}
	var connect float64
	_ = json.Unmarshal(m["connect_s"], &connect)
	if err := sleepCtx(ctx, o.W3Settle); err != nil {
		return W3Size{}, err
	}
	after, err := ReadProc(s.Pid)
	if err != nil {
		return W3Size{}, err
	}
	w0 := time.Now()
	if err := sleepCtx(ctx, o.W3IdleCPU); err != nil {
		return W3Size{}, err
	}
	c1, _ := cpuTicks(s.Pid)
	_, _ = io.WriteString(a.stdin, "close\n")
	_, _ = a.next(ctx, "result", time.Minute)
	fn := float64(n)
	return W3Size{Peers: n, Sessions: (n + o.W3PerSession - 1) / o.W3PerSession, ConnectSec: round3(connect),
		BaseRSSkB: before.RSSkB, RSSkB: after.RSSkB,
		PerPeerkB:    round3(float64(after.RSSkB-before.RSSkB) / fn),
		FDsPerPeer:   round3(float64(after.FDs-before.FDs) / fn),
		ThreadsAfter: after.Threads,
		IdleCPUPct:   round3(100 * CPUSeconds(c1-after.CPUTicks) / time.Since(w0).Seconds()),
	}, nil
}

// EasyW4 runs the relay flood (easyrtcCmd candidates) for every pair count.
func (e *Easy) EasyW4(ctx context.Context, env *Env, o Options) (W4Result, error) {
	var res W4Result
	for _, pairs := range o.W4Pairs {
		win := o.W4Window
		if pairs == 1 {
			win = 1
		}
		r, err := medianRun(ctx, o.W4Repeat, func() (FloodRun, error) { return e.flood(ctx, env, o, pairs, win) })
		if err != nil {
			return res, fmt.Errorf("%d pairs: %w", pairs, err)
		}
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

func (e *Easy) flood(ctx context.Context, env *Env, o Options, pairs, win int) (FloodRun, error) {
	s, err := e.StartEasy(ctx, env, 0)
	if err != nil {
		return FloodRun{}, err
	}
	defer s.Kill()
	timeout := 3*time.Minute + o.W4Warmup + o.W4Duration
	a, err := e.runAdapter(env, s, "flood", fmt.Sprintf("--pairs=%d", pairs), fmt.Sprintf("--window=%d", win),
		fmt.Sprintf("--bytes=%d", o.W4Size), fmt.Sprintf("--warmup=%d", o.W4Warmup.Milliseconds()),
		fmt.Sprintf("--duration=%d", o.W4Duration.Milliseconds()), fmt.Sprintf("--timeout=%d", timeout.Milliseconds()))
	if err != nil {
		return FloodRun{}, err
	}
	defer a.wait()
	if _, err := a.next(ctx, "mark", timeout); err != nil {
		return FloodRun{}, err
	}
	s0, _ := cpuTicks(s.Pid)
	w0 := time.Now()
	if _, err := a.next(ctx, "mark", timeout); err != nil {
		return FloodRun{}, err
	}
	s1, _ := cpuTicks(s.Pid)
	wall := time.Since(w0).Seconds()
	m, err := a.next(ctx, "result", time.Minute)
	if err != nil {
		return FloodRun{}, err
	}
	var r FloodRun
	b, _ := json.Marshal(m)
	if err := json.Unmarshal(b, &r); err != nil {
		return FloodRun{}, err
	}
	r.ServerCPUPct = round3(100 * CPUSeconds(s1-s0) / wall)
	r.perMsg(s1-s0, 0)
	if !s.Alive() {
		return r, errors.New("server.js died during the flood")
	}
	return r, nil
}
