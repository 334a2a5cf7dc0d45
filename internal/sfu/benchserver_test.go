package sfu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// envBenchServer makes the test binary a router process for
// BenchmarkSession: its CPU is then the server's alone.
const envBenchServer = "SFU_BENCH_SERVER"

// envBenchPin=1 pins the router process to CPU 0 and the clients (this
// process) to CPU 1 with taskset, as issue 11 measured Galène. The router
// then has GOMAXPROCS 1, so its fan-out is not split.
const envBenchPin = "SFU_BENCH_PIN"

// envBenchReadTap=0 leaves every publisher on pion's read path (the
// router's read tap is on otherwise, as in the package's tests): the A/B
// of srtpread.go.
const envBenchReadTap = "SFU_BENCH_READTAP"

// benchReadTap reports whether the benchmark's routers read through a tap.
func benchReadTap() bool { return os.Getenv(envBenchReadTap) != "0" }

// benchLine is one line of the parent↔child protocol (JSON lines on the
// child's stdin and stdout).
type benchLine struct {
	Op   string  `json:"op"` // "add", "msg", "goroutines"; from the child: "signal", "goroutines"
	Room int     `json:"room"`
	Peer string  `json:"peer"`
	M    Message `json:"m"`
	N    int     `json:"n,omitempty"` // the child's goroutine count, in its "goroutines" reply
}

// runBenchServer serves one router on a loopback UDP mux until stdin
// closes.
func runBenchServer() int {
	if path := os.Getenv(envBenchServer + "_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	// The execution trace shows how long the layer reader waits for the
	// one P among the connections' goroutines (go tool trace -pprof=sched).
	if path := os.Getenv(envBenchServer + "_TRACE"); path != "" {
		f, err := os.Create(path)
		if err == nil && trace.Start(f) == nil {
			defer f.Close()
			defer trace.Stop()
		}
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(4 << 20)
	var tap *ReadTap
	if benchReadTap() {
		tap = NewReadTap()
	}
	mux := webrtc.NewICEUDPMux(nil, MuxConnWith(conn, tap))
	defer mux.Close()
	eng, err := NewEngine(EngineConfig{UDPMux: mux, UDPConn: conn, ReadTap: tap, IncludeLoopback: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := &lineWriter{ch: make(chan benchLine, 4096), done: make(chan struct{})}
	go out.run(os.Stdout)
	rooms := map[int]*Router{}
	router := func(room int) *Router {
		if rooms[room] == nil {
			rooms[room] = eng.NewRouter(RouterConfig{InitialBitrate: 20_000_000}, roomSignaler{out, room})
		}
		return rooms[room]
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l benchLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Op {
		case "add":
			_ = router(l.Room).Add(l.Peer)
		case "goroutines": // what the routers and their connections keep running
			if path := os.Getenv(envBenchServer + "_GOROUTINES"); path != "" {
				if f, err := os.Create(path); err == nil {
					_ = pprof.Lookup("goroutine").WriteTo(f, 1)
					_ = f.Close()
				}
			}
			out.ch <- benchLine{Op: "goroutines", N: runtime.NumGoroutine()}
		case "msg":
			if err := router(l.Room).Handle(l.Peer, l.M); err != nil {
				fmt.Fprintln(os.Stderr, "handle:", err)
			}
		}
	}
	// What the routers and their peer connections keep running, for
	// docs/performance.md (per-connection background work).
	for _, r := range rooms {
		r.Close()
	}
	close(out.ch)
	<-out.done
	return 0
}

// lineWriter is the child's Signaler: it queues, a goroutine writes.
type lineWriter struct {
	ch   chan benchLine
	done chan struct{}
}

type roomSignaler struct {
	w    *lineWriter
	room int
}

func (s roomSignaler) Signal(peer string, m Message) {
	s.w.ch <- benchLine{Op: "signal", Room: s.room, Peer: peer, M: m}
}

func (w *lineWriter) run(out io.Writer) {
	defer close(w.done)
	enc := json.NewEncoder(out)
	for l := range w.ch {
		_ = enc.Encode(l)
	}
}

// remoteRouter is a routerAPI whose router runs in a child process.
type remoteRouter struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	in   io.WriteCloser
	enc  *json.Encoder
	wg   sync.WaitGroup
	stop func()
	// goroutines receives the child's replies to "goroutines".
	goroutines chan int
}

// startRemote starts the child and routes its signals to the env of
// their room.
func startRemote(b *testing.B, envs func(room int) *env) *remoteRouter {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	pin := os.Getenv(envBenchPin) == "1"
	if pin {
		cmd = exec.Command("taskset", "-c", "0", os.Args[0], "-test.run=^$")
		out, err := exec.Command("taskset", "-a", "-cp", "1", strconv.Itoa(os.Getpid())).CombinedOutput()
		if err != nil {
			b.Fatalf("pinning the clients to CPU 1: %v: %s", err, out)
		}
		all := fmt.Sprintf("0-%d", runtime.NumCPU()-1) // NumCPU: the affinity at start
		b.Cleanup(func() { _ = exec.Command("taskset", "-a", "-cp", all, strconv.Itoa(os.Getpid())).Run() })
	}
	cmd.Env = append(os.Environ(), envBenchServer+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	must(b, err)
	out, err := cmd.StdoutPipe()
	must(b, err)
	must(b, cmd.Start())
	rr := &remoteRouter{cmd: cmd, in: in, enc: json.NewEncoder(in), goroutines: make(chan int, 1)}
	rr.wg.Go(func() {
		dec := json.NewDecoder(out)
		for {
			var l benchLine
			if dec.Decode(&l) != nil {
				return
			}
			if l.Op == "goroutines" {
				select {
				case rr.goroutines <- l.N:
				default:
				}
				continue
			}
			if e := envs(l.Room); e != nil {
				e.Signal(l.Peer, l.M)
			}
		}
	})
	b.Cleanup(func() {
		_ = in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		rr.wg.Wait()
	})
	return rr
}

func (rr *remoteRouter) send(l benchLine) error {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.enc.Encode(l)
}

// room is one router of the child, a routerAPI.
type room struct {
	rr *remoteRouter
	n  int
}

func (r room) Add(peer string) error { return r.rr.send(benchLine{Op: "add", Room: r.n, Peer: peer}) }

func (r room) Handle(peer string, m Message) error {
	return r.rr.send(benchLine{Op: "msg", Room: r.n, Peer: peer, M: m})
}

// cpu is the child's CPU time so far (user + system, from /proc).
func (rr *remoteRouter) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rr.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is 3rd.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// goroutineCount asks the child how many goroutines it runs; -1 if it
// does not answer within 5 s.
func (rr *remoteRouter) goroutineCount() int {
	if rr.send(benchLine{Op: "goroutines"}) != nil {
		return -1
	}
	select {
	case n := <-rr.goroutines:
		return n
	case <-time.After(5 * time.Second):
		return -1
	}
}
