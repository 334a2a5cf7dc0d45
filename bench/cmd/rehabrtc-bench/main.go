// Command rehabrtc-bench is the load generator of rehabrtc: it builds and
// launches the service, drives it with real WebSocket clients through
// workloads W0-W6 and, asked for by name, the W7 soak and the W8 SFU scenarios
// (docs/performance.md), runs the same workloads against
// open-easyrtc when bench/easyrtc/node_modules is installed, and writes a
// JSON report and a Markdown table.
//
//	rehabrtc-bench [--quick] [--out results.json] [--workloads W0,W4] [sizes…]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rehabrtc/rehabrtc/bench/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rehabrtc-bench:", err)
		}
		os.Exit(2)
	}
}

// intList parses "100,1000,10000".
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*l = append(*l, n)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rehabrtc-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "tiny sizes (the whole run takes well under a minute; for CI)")
	// Sizes are read after --quick is known: parse once to find it.
	quickOnly := flag.NewFlagSet("", flag.ContinueOnError)
	quickOnly.SetOutput(io.Discard)
	q := quickOnly.Bool("quick", false, "")
	for _, a := range args {
		if a == "--quick" || a == "-quick" || a == "--quick=true" || a == "-quick=true" {
			*q = true
		}
	}
	o := loadgen.DefaultOptions(*q)
	out := fs.String("out", "", "write the JSON report to this file and the Markdown table next to it (.md)")
	workloads := fs.String("workloads", strings.Join(loadgen.DefaultWorkloads, ","), "workloads to run, comma-separated (W7, the soak, and W8, the SFU, only when named)")
	bin := fs.String("bin", "", "rehabrtc binary to use (default: go build ./cmd/rehabrtc)")
	baseline := fs.String("baseline-bin", "", "another rehabrtc binary (e.g. built from main) run through the same workloads after each one, in the comparison column instead of open-easyrtc")
	easy := fs.String("easyrtc", "auto", "open-easyrtc side: auto (when bench/easyrtc/node_modules exists), on, off")
	easyDir := fs.String("easyrtc-dir", "", "the bench/easyrtc folder (default: <module>/bench/easyrtc)")
	easyLog := fs.String("easyrtc-log", "warning", "EasyRTC log level of server.js (OpenTera passes --debug=1: debug)")
	logLevel := fs.String("log-level", "info", "rehabrtc log level (the product default is info)")
	buildRace := fs.Bool("build-race", false, "build the server with -race (for smoke tests; figures are then meaningless)")
	keep := fs.Bool("keep", false, "keep the scratch directory (each server's log and data) and print where it is")
	pin := fs.Bool("pin", true, "pin server and load generator to different CPUs when there are at least 2")
	timeout := fs.Duration("timeout", 0, "stop everything after this long (default: 2 min with --quick, else 20 min + W6's and W7's durations)")
	setSizes := sizeFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.Quick = *quick
	setSizes()
	wl, err := parseWorkloads(*workloads)
	if err != nil {
		return err
	}
	if *easy != "auto" && *easy != "on" && *easy != "off" {
		return fmt.Errorf("--easyrtc: want auto, on or off")
	}
	if *timeout == 0 {
		*timeout = 20*time.Minute + o.W6Duration
		if slices.Contains(wl, "W7") {
			*timeout += o.W7Duration
		}
		if slices.Contains(wl, "W8") {
			*timeout += 5 * o.W8Duration
		}
		if slices.Contains(wl, "W9") {
			*timeout += time.Duration(o.W9Trials) * 3 * time.Duration(o.W9LeaseMS) * time.Millisecond
		}
		if o.Quick {
			*timeout = 2 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	wd, _ := os.Getwd()
	root, err := loadgen.ModuleRoot(wd)
	if err != nil && (*bin == "" || (*easy != "off" && *easyDir == "")) {
		return err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{Options: o, Workloads: wl, Bin: *bin, BaselineBin: *baseline, Root: root, EasyDir: *easyDir,
		Easy: *easy, Pin: *pin, Keep: *keep, BuildRace: *buildRace, LogLevel: *logLevel, EasyLog: *easyLog, Logf: logf})
	if err != nil {
		return err
	}
	md := rep.Markdown()
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := writeReport(*out, rep, md); err != nil {
			return err
		}
	}
	switch {
	case rep.Interrupted:
		return errors.New("interrupted (or --timeout reached): the report is partial")
	case len(rep.Errors) > 0:
		return fmt.Errorf("%d workload(s) failed", len(rep.Errors))
	}
	return nil
}

// sizeFlags registers the flags of the workloads' sizes on fs, with o's
// values as defaults; the returned func stores the list flags into o once
// fs is parsed.
func sizeFlags(fs *flag.FlagSet, o *loadgen.Options) (set func()) {
	fs.IntVar(&o.W0Runs, "w0-runs", o.W0Runs, "W0: service starts")
	fs.IntVar(&o.W1Sessions, "w1-sessions", o.W1Sessions, "W1: sessions started")
	fs.IntVar(&o.W1EasySessions, "w1-easyrtc-pool", o.W1EasySessions, "W1: EasyRTC processes alive at once (OpenTera's max_sessions)")
	fs.IntVar(&o.W2Joins, "w2-joins", o.W2Joins, "W2: sequential joins")
	fs.IntVar(&o.W2Concurrent, "w2-concurrent", o.W2Concurrent, "W2: concurrent joins (EasyRTC's room limit is 100)")
	fs.IntVar(&o.W2Calls, "w2-calls", o.W2Calls, "W2: call setups")
	fs.IntVar(&o.W2Candidates, "w2-candidates", o.W2Candidates, "W2: ICE candidates per call, half from each side")
	w3 := intList(o.W3Sizes)
	fs.Var(&w3, "w3-peers", "W3: idle peer counts")
	fs.IntVar(&o.W3PerSession, "w3-per-session", o.W3PerSession, "W3: peers per session (EasyRTC: per room)")
	fs.DurationVar(&o.W3Settle, "w3-settle", o.W3Settle, "W3: idle time before reading the footprint")
	w4 := intList(o.W4Pairs)
	fs.Var(&w4, "w4-pairs", "W4: pair counts (1 pair runs with window 1: the latency floor)")
	fs.IntVar(&o.W4Window, "w4-window", o.W4Window, "W4/W5: messages in flight per sender")
	fs.IntVar(&o.W4Size, "w4-bytes", o.W4Size, "W4/W5: message size in bytes")
	fs.DurationVar(&o.W4Duration, "w4-duration", o.W4Duration, "W4: measured time per run (after the warm-up)")
	fs.IntVar(&o.W4Repeat, "w4-repeat", o.W4Repeat, "W4/W5: runs per size, each on a fresh server; the median is reported")
	w5 := intList(o.W5Receivers)
	fs.Var(&w5, "w5-receivers", "W5: receivers of the fan-out")
	fs.DurationVar(&o.W5Duration, "w5-duration", o.W5Duration, "W5: measured time per run")
	fs.DurationVar(&o.W6Duration, "w6-duration", o.W6Duration, "W6: churn duration")
	fs.IntVar(&o.W6Workers, "w6-workers", o.W6Workers, "W6: concurrent churn loops")
	fs.DurationVar(&o.W7Duration, "w7-duration", o.W7Duration, "W7: soak duration")
	fs.IntVar(&o.W7Sessions, "w7-sessions", o.W7Sessions, "W7: sessions")
	fs.IntVar(&o.W7Peers, "w7-peers", o.W7Peers, "W7: honest peers, spread over the sessions")
	fs.IntVar(&o.W7Flooders, "w7-flooders", o.W7Flooders, "W7: hostile participants flooding chat (one per session)")
	fs.IntVar(&o.W7Idle, "w7-idle", o.W7Idle, "W7: unauthenticated WebSockets held open (never joined)")
	fs.DurationVar(&o.W7ChurnEvery, "w7-churn-every", o.W7ChurnEvery, "W7: one honest peer leaves and rejoins this often")
	fs.DurationVar(&o.W7ChatEvery, "w7-chat-every", o.W7ChatEvery, "W7: each honest peer sends a chat message this often")
	fs.IntVar(&o.W7FloodBurst, "w7-flood-burst", o.W7FloodBurst, "W7: chat messages per flood burst")
	fs.DurationVar(&o.W7FloodPause, "w7-flood-pause", o.W7FloodPause, "W7: pause between flood bursts")
	fs.DurationVar(&o.W7Sample, "w7-sample", o.W7Sample, "W7: CPU and /healthz sampling period")
	fs.IntVar(&o.W9Starts, "w9-starts", o.W9Starts, "W9: sessions started one after the other (each node's API in turn)")
	fs.IntVar(&o.W9Joins, "w9-joins", o.W9Joins, "W9: sequential joins")
	fs.IntVar(&o.W9Concurrent, "w9-concurrent", o.W9Concurrent, "W9: concurrent joins")
	fs.IntVar(&o.W9Pairs, "w9-pairs", o.W9Pairs, "W9: relay pairs (window --w4-window, --w4-bytes)")
	fs.DurationVar(&o.W9Duration, "w9-duration", o.W9Duration, "W9: measured time of the flood")
	fs.DurationVar(&o.W9Idle, "w9-idle", o.W9Idle, "W9: Redis commands counted this long with nobody connected")
	fs.IntVar(&o.W9LeaseMS, "w9-lease-ms", o.W9LeaseMS, "W9: the cluster's lease_time_ms (the product default is 5000)")
	fs.IntVar(&o.W9Trials, "w9-trials", o.W9Trials, "W9: failover trials (kill -9 of a home; 0 = none)")
	fs.IntVar(&o.W9FailoverSessions, "w9-failover-sessions", o.W9FailoverSessions, "W9: sessions of the failover trials")
	fs.IntVar(&o.W9Clients, "w9-clients", o.W9Clients, "W9: WebSocket clients in those sessions")
	fs.StringVar(&o.W8Scenarios, "w8-scenarios", o.W8Scenarios, "W8: SFU scenarios, SESSIONSxPARTICIPANTS[/PUBLISHERS] comma-separated (1x101/1: 1 publisher × 100 subscribers)")
	fs.DurationVar(&o.W8Duration, "w8-duration", o.W8Duration, "W8: measured time per scenario")
	fs.BoolVar(&o.W8TWCC, "w8-twcc", o.W8TWCC, "W8: publishers stamp transport-wide sequence numbers, as browsers do (the server then sends transport-cc feedback)")
	fs.BoolVar(&o.W8NoAudio, "w8-no-audio", o.W8NoAudio, "W8: publish the camera alone, no mic (issue 11's Galène figures are video only)")
	fs.BoolVar(&o.W8Simulcast, "w8-simulcast", o.W8Simulcast, "W8: publish the camera in three simulcast layers (q, h, f) as pages do; the top one is forwarded")
	fs.DurationVar(&o.W8Warmup, "w8-warmup", o.W8Warmup, "W8: media flowing to every subscriber → measured window")
	fs.StringVar(&o.W8ToolProfile, "w8-tool-cpuprofile", o.W8ToolProfile, "W8: write the load tool's own CPU profile over each measured window to FILE.<scenario>.pprof")
	fs.DurationVar(&o.W8Idle, "w8-idle", o.W8Idle, "W8: after the measured window, measure the server for this long with every connection up and no media (0: not)")
	return func() { o.W3Sizes, o.W4Pairs, o.W5Receivers = w3, w4, w5 }
}

// parseWorkloads reads --workloads: "W0,w4" → [W0 W4].
func parseWorkloads(s string) ([]string, error) {
	var wl []string
	for w := range strings.SplitSeq(s, ",") {
		w = strings.ToUpper(strings.TrimSpace(w))
		if !strings.HasPrefix(w, "W") || len(w) != 2 || w[1] < '0' || w[1] > '9' {
			return nil, fmt.Errorf("unknown workload %q (want W0…W9)", w)
		}
		wl = append(wl, w)
	}
	return wl, nil
}

// writeReport writes the JSON report to out and the Markdown table next
// to it (.md).
func writeReport(out string, rep *loadgen.Report, md string) error {
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(strings.TrimSuffix(out, ".json")+".md", []byte(md), 0o644)
}
