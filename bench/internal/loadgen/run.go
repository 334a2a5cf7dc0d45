package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config is one run of the benchmark.
type Config struct {
	Options   Options
	Workloads []string // "W0".."W9"
	Bin       string   // prebuilt rehabrtc; "" = go build it
	// BaselineBin, when set, is another rehabrtc binary (e.g. built from
	// main) run through the same workloads right after each one, in the
	// comparison column instead of open-easyrtc.
	BaselineBin string
	Root        string // module root, to build and to find bench/easyrtc
	EasyDir     string // "" = <Root>/bench/easyrtc
	Easy        string // "auto", "on", "off"
	Pin         bool
	Keep        bool   // keep the scratch directory (server logs, data)
	BuildRace   bool   // build the server with -race (smoke tests under -race reuse their build cache)
	LogLevel    string // rehabrtc log level
	EasyLog     string // EasyRTC log level
	Logf        func(format string, args ...any)
}

// AllWorkloads in run order.
var AllWorkloads = []string{"W0", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9"}

// DefaultWorkloads are those a run without --workloads runs: all but the
// W7 soak, which takes 15 minutes on its own, the W8 SFU scenarios (pion
// clients, minutes of media) and the W9 cluster, which needs
// redis-server; each is asked for by name.
var DefaultWorkloads = AllWorkloads[:7]

// Run runs the selected workloads, rehabrtc then open-easyrtc for each,
// and returns the report. A workload that fails is recorded in
// Report.Errors and the run goes on; ctx ending stops it.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	defer func() {
		if rep != nil {
			rep.Build()
		}
	}()
	started := time.Now()
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep = &Report{LoadAvg: loadAvg(), Started: started.UTC().Format(time.RFC3339), Options: cfg.Options, Machine: DescribeMachine()}
	dir, err := os.MkdirTemp("", "rehabrtc-bench-")
	if err != nil {
		return nil, err
	}
	if cfg.Keep {
		logf("keeping %s (server logs and data)", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	env := &Env{Dir: dir, NoFile: RaiseNoFile(1 << 20), LogLevel: cfg.LogLevel, Logf: logf, Keep: cfg.Keep}
	rep.Machine.NoFile = env.NoFile
	if err := pin(env, cfg, rep); err != nil {
		return nil, err
	}
	if env.Bin, err = serverBinary(ctx, cfg, dir, logf); err != nil {
		return nil, err
	}
	env.RateKey = HasRateKey(ctx, env.Bin)
	base := baselineSide(ctx, env, &cfg, rep)
	easy, err := easySide(cfg, rep)
	if err != nil {
		return nil, err
	}
	if base != nil {
		rep.EasyRTC = "not run; the comparison column is the baseline binary " + cfg.BaselineBin
	}

	// Background load: CPU the machine spent on other processes during the
	// run (the benchmark's figures assume it is near zero).
	busy0, own0, wall0 := machineBusy(), ownTicks(), time.Now()
	defer func() {
		other := float64(machineBusy()-busy0-(ownTicks()-own0)) / clockTicks
		rep.OtherCPUPct = round3(100 * other / time.Since(wall0).Seconds() / float64(rep.Machine.NProc))
	}()
	runWorkloads(ctx, env, base, easy, cfg, rep)
	rep.Seconds = round3(time.Since(started).Seconds())
	return rep, nil
}

// pin puts the server on the upper half of the CPUs and the load
// generator on the lower half, when asked and there are two or more.
func pin(env *Env, cfg Config, rep *Report) error {
	if cpus := AllowedCPUs(); cfg.Pin && len(cpus) >= 2 {
		half := len(cpus) / 2
		env.LoadCPUs, env.ServerCPUs = cpus[:half], cpus[half:]
		if ts, err := exec.LookPath("taskset"); err == nil {
			env.Taskset = ts
		}
		if err := PinProcess(os.Getpid(), env.LoadCPUs); err != nil {
			return fmt.Errorf("pin the load generator: %w", err)
		}
		runtime.GOMAXPROCS(len(env.LoadCPUs))
	}
	rep.Pinning = env.PinMode()
	rep.ServerEnv = fmt.Sprintf("GOGC unset (100), GOMEMLIMIT unset, GOMAXPROCS = its CPUs (%d)", max(1, len(env.ServerCPUs)))
	if env.ServerCPUs == nil {
		rep.ServerEnv = "GOGC unset (100), GOMEMLIMIT unset, GOMAXPROCS default"
	}
	rep.LogLevels = cfg.LogLevel
	return nil
}

// baselineSide is the environment of --baseline-bin, or nil. It takes the
// open-easyrtc side's place in the report.
func baselineSide(ctx context.Context, env *Env, cfg *Config, rep *Report) *Env {
	if cfg.BaselineBin == "" {
		return nil
	}
	b := *env
	b.Bin, b.RateKey = cfg.BaselineBin, HasRateKey(ctx, cfg.BaselineBin)
	cfg.Easy = "off"
	rep.Other = "baseline"
	return &b
}

// serverBinary is --bin, or rehabrtc built from the product module.
func serverBinary(ctx context.Context, cfg Config, dir string, logf func(string, ...any)) (string, error) {
	if cfg.Bin != "" {
		return cfg.Bin, nil
	}
	logf("building rehabrtc")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return BuildRehabRTC(bctx, cfg.Root, dir, cfg.BuildRace)
}

// easySide finds the open-easyrtc side, or says in the report why it
// does not run; it fails only when --easyrtc=on and it cannot run.
func easySide(cfg Config, rep *Report) (*Easy, error) {
	easyDir := cfg.EasyDir
	if easyDir == "" {
		easyDir = cfg.Root + "/bench/easyrtc"
	}
	if cfg.Easy == "off" {
		rep.EasyRTC = "not run (--easyrtc=off)"
		return nil, nil
	}
	easy, err := FindEasy(easyDir)
	if err != nil {
		if cfg.Easy == "on" {
			return nil, err
		}
		rep.EasyRTC = "not run: " + err.Error()
		return nil, nil
	}
	if cfg.EasyLog != "" {
		easy.Log = cfg.EasyLog
	}
	rep.Machine.NodeVer = easy.NodeVersion()
	rep.EasyRTC = easyVersions(easyDir) + ", node " + rep.Machine.NodeVer + ", log level " + easy.Log
	return easy, nil
}

// runWorkloads runs the chosen workloads, each side after the other, and
// records each failure in the report (a failed workload does not stop the
// others; a cancelled context does).
func runWorkloads(ctx context.Context, env, base *Env, easy *Easy, cfg Config, rep *Report) {
	step := func(name, side string, f func() error) {
		if ctx.Err() != nil {
			return
		}
		t0 := time.Now()
		env.Logf("%s %s …", name, side)
		if err := f(); err != nil {
			if errors.Is(err, errStopped) || ctx.Err() != nil {
				rep.Interrupted = true
				return
			}
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s %s: %v", name, side, err))
			env.Logf("%s %s failed: %v", name, side, err)
			return
		}
		env.Logf("%s %s done in %.1f s", name, side, time.Since(t0).Seconds())
	}
	o := cfg.Options
	want := func(w string) bool { return slices.Contains(cfg.Workloads, w) }
	if want("W0") {
		step("W0", "rehabrtc", func() error { r, err := RehabW0(ctx, env, o); rep.Rehab.W0 = &r; return err })
		if base != nil {
			step("W0", "baseline", func() error { r, err := RehabW0(ctx, base, o); rep.Easy.W0 = &r; return err })
		}
		if easy != nil {
			step("W0", "open-easyrtc", func() error { r, err := easy.EasyW0(ctx, env, o); rep.Easy.W0 = &r; return err })
		}
	}
	if want("W1") {
		step("W1", "rehabrtc", func() error { r, err := RehabW1(ctx, env, o, false); rep.Rehab.W1 = &r; return err })
		if base != nil {
			step("W1", "baseline", func() error { r, err := RehabW1(ctx, base, o, false); rep.Easy.W1 = &r; return err })
		}
		step("W1", "rehabrtc, child-process runner", func() error {
			r, err := RehabW1(ctx, env, o, true)
			rep.Rehab.W1Child = &r
			return err
		})
		if easy != nil {
			step("W1", "open-easyrtc", func() error { r, err := easy.EasyW1(ctx, env, o); rep.Easy.W1 = &r; return err })
		}
	}
	if want("W2") {
		step("W2", "rehabrtc", func() error { r, err := RehabW2(ctx, env, o); rep.Rehab.W2 = &r; return err })
		if base != nil {
			step("W2", "baseline", func() error { r, err := RehabW2(ctx, base, o); rep.Easy.W2 = &r; return err })
		}
		if easy != nil {
			step("W2", "open-easyrtc", func() error { r, err := easy.EasyW2(ctx, env, o); rep.Easy.W2 = &r; return err })
		}
	}
	if want("W3") {
		step("W3", "rehabrtc", func() error { r, err := RehabW3(ctx, env, o); rep.Rehab.W3 = &r; return err })
		if base != nil {
			step("W3", "baseline", func() error { r, err := RehabW3(ctx, base, o); rep.Easy.W3 = &r; return err })
		}
		if easy != nil {
			step("W3", "open-easyrtc", func() error { r, err := easy.EasyW3(ctx, env, o); rep.Easy.W3 = &r; return err })
		}
	}
	if want("W4") {
		step("W4", "rehabrtc", func() error { r, err := RehabW4(ctx, env, o); rep.Rehab.W4 = &r; return err })
		if base != nil {
			step("W4", "baseline", func() error { r, err := RehabW4(ctx, base, o); rep.Easy.W4 = &r; return err })
		}
		if easy != nil {
			step("W4", "open-easyrtc", func() error { r, err := easy.EasyW4(ctx, env, o); rep.Easy.W4 = &r; return err })
		}
	}
	if want("W5") {
		step("W5", "rehabrtc", func() error { r, err := RehabW5(ctx, env, o); rep.Rehab.W5 = &r; return err })
		if base != nil {
			step("W5", "baseline", func() error { r, err := RehabW5(ctx, base, o); rep.Easy.W5 = &r; return err })
		}
	}
	if want("W6") {
		step("W6", "rehabrtc", func() error { r, err := RehabW6(ctx, env, o); rep.Rehab.W6 = &r; return err })
	}
	if want("W7") {
		step("W7", "rehabrtc", func() error { r, err := RehabW7(ctx, env, o); rep.Rehab.W7 = &r; return err })
	}
	if want("W8") {
		if base == nil {
			step("W8", "rehabrtc", func() error { r, err := RehabW8(ctx, env, o); rep.Rehab.W8 = &r; return err })
		} else {
			// Scenario by scenario, the two binaries one after the other.
			step("W8", "rehabrtc and baseline", func() error {
				r, b, err := RehabW8Pair(ctx, env, base, o)
				rep.Rehab.W8, rep.Easy.W8 = &r, &b
				return err
			})
		}
	}
	if want("W9") {
		step("W9", "rehabrtc, one node then three", func() error { r, err := RehabW9(ctx, env, o); rep.Rehab.W9 = &r; return err })
	}
}

// easyVersions reads the installed versions of the packages that matter.
func easyVersions(dir string) string {
	var parts []string
	for _, p := range []string{"open-easyrtc", "socket.io", "socket.io-client", "express"} {
		b, err := os.ReadFile(dir + "/node_modules/" + p + "/package.json")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.Index(s, `"version"`)
		if i < 0 {
			continue
		}
		v := s[i+len(`"version"`):]
		v = v[strings.IndexByte(v, '"')+1:]
		v = v[:strings.IndexByte(v, '"')]
		parts = append(parts, p+" "+v)
	}
	return strings.Join(parts, ", ")
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
