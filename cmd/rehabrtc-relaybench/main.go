// Command rehabrtc-relaybench measures TURN relaying: N pairs of clients,
// each pair A↔B relaying a UDP stream through the server (A's allocation
// to B's relayed address, so every packet crosses the server twice, as
// between two relayed browsers), against rehabrtc's embedded server and
// Debian's coturn on the same machine in the same run, each pinned to one
// CPU with taskset (run the tool itself on the other one):
//
//	go build -o /tmp/rehabrtc ./cmd/rehabrtc
//	taskset -c 1 go run ./cmd/rehabrtc-relaybench --rehabrtc /tmp/rehabrtc --server-cpu 0
//
// It reports, per offered rate, the server's CPU per relayed Mbit (from
// /proc/<pid>/stat), the one-way latency through the relay (p50, p99), the
// loss, and what the load generator sent and spent; then, per server, the
// saturation point: the rate from which the loss stays above 1 %. Past the
// listed rates it keeps raising the rate by --rate-step up to --max-rate
// until the loss has passed 1 % twice in a row.
//
// To compare builds, name several (--rehabrtc before=/tmp/a,after=/tmp/b)
// and run --rounds 2: the servers are measured in turn, round after round.
// It is a separate command, not a workload of bench/ (a module kept free
// of dependencies), because it needs pion/turn.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rehabrtc-relaybench:", err)
		}
		os.Exit(2)
	}
}

type options struct {
	rehabrtc  []build // binaries; none skips the embedded server
	coturn    bool    // also measure coturn (turnserver on PATH)
	pairs     int     // client pairs
	rates     []int   // total offered Mbit/s, A→B summed over pairs
	maxRate   int     // keep raising the rate up to this until saturation; 0 = the listed rates only
	rateStep  int
	rounds    int
	packet    int // payload bytes
	duration  time.Duration
	serverCPU string // taskset CPU list for the server; "" = no pinning
}

// build is a rehabrtc binary and the name it has in the results.
type build struct{ name, path string }

// parseBuilds reads "path" or "name=path,name=path".
func parseBuilds(s string) ([]build, error) {
	if s == "" {
		return nil, nil
	}
	fields := strings.Split(s, ",")
	var out []build
	for _, f := range fields {
		name, path, ok := strings.Cut(f, "=")
		switch {
		case !ok && len(fields) > 1:
			return nil, errors.New("--rehabrtc: name each of several binaries (name=path)")
		case !ok:
			name, path = "rehabrtc", f
		}
		if name == "" || path == "" || name == "coturn" || slices.ContainsFunc(out, func(b build) bool { return b.name == name }) {
			return nil, fmt.Errorf("--rehabrtc: %q is not path or name=path (a name used once, not coturn)", f)
		}
		out = append(out, build{name, path})
	}
	return out, nil
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rehabrtc-relaybench", flag.ContinueOnError)
	var o options
	var rates, builds string
	fs.StringVar(&builds, "rehabrtc", "", "rehabrtc binary to measure, or several as name=path,name=path (empty: skip)")
	fs.BoolVar(&o.coturn, "coturn", true, "also measure coturn (turnserver)")
	fs.IntVar(&o.pairs, "pairs", 20, "client pairs (allocations = 2 × pairs)")
	fs.StringVar(&rates, "rates", "100,200,400,600,800,1000", "offered rates, total Mbit/s")
	fs.IntVar(&o.maxRate, "max-rate", 3000, "past the rates, raise the rate by --rate-step up to this until the loss passes 1 % twice (0: the rates only)")
	fs.IntVar(&o.rateStep, "rate-step", 200, "step past the listed rates, Mbit/s")
	fs.IntVar(&o.rounds, "rounds", 1, "measure every server this many times, in turn")
	fs.IntVar(&o.packet, "packet", 1200, "payload bytes per packet")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measuring time per rate")
	fs.StringVar(&o.serverCPU, "server-cpu", "0", "CPU list the server is pinned to (taskset); empty = none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("--rates: %q is not a positive number", s)
		}
		o.rates = append(o.rates, n)
	}
	if o.pairs < 1 || o.packet < 16 || o.packet > 1400 || o.rounds < 1 || o.maxRate < 0 || o.rateStep < 1 {
		return errors.New("--pairs and --rounds must be ≥ 1, --packet between 16 and 1400, --rate-step ≥ 1")
	}
	var err error
	if o.rehabrtc, err = parseBuilds(builds); err != nil {
		return err
	}
	type server struct {
		name  string
		start starter
	}
	var servers []server
	for _, b := range o.rehabrtc {
		servers = append(servers, server{b.name, startRehabRTC(b.path)})
	}
	if o.coturn {
		servers = append(servers, server{"coturn", startCoturn})
	}
	var results []result
	for round := 1; round <= o.rounds; round++ {
		for _, s := range servers {
			r, err := measure(ctx, o, s.name, s.start)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			for i := range r {
				r[i].round = round
			}
			results = append(results, r...)
		}
	}
	printTable(os.Stdout, o, results)
	return nil
}
