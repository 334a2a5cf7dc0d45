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
// /proc/<pid>/stat), the one-way latency through the relay (p50, p99) and
// the loss; the saturation point is the first rate whose loss passes 1 %.
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
	rehabrtc  string // binary; "" skips the embedded server
	coturn    bool   // also measure coturn (turnserver on PATH)
	pairs     int    // client pairs
	rates     []int  // total offered Mbit/s, A→B summed over pairs
	packet    int    // payload bytes
	duration  time.Duration
	serverCPU string // taskset CPU list for the server; "" = no pinning
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rehabrtc-relaybench", flag.ContinueOnError)
	var o options
	var rates string
	fs.StringVar(&o.rehabrtc, "rehabrtc", "", "rehabrtc binary to measure (empty: skip)")
	fs.BoolVar(&o.coturn, "coturn", true, "also measure coturn (turnserver)")
	fs.IntVar(&o.pairs, "pairs", 20, "client pairs (allocations = 2 × pairs)")
	fs.StringVar(&rates, "rates", "50,100,200,400,600,800,1000", "offered rates, total Mbit/s")
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
	if o.pairs < 1 || o.packet < 16 || o.packet > 1400 {
		return errors.New("--pairs must be ≥ 1 and --packet between 16 and 1400")
	}
	var results []result
	if o.rehabrtc != "" {
		r, err := measure(ctx, o, "rehabrtc", startRehabRTC)
		if err != nil {
			return fmt.Errorf("rehabrtc: %w", err)
		}
		results = append(results, r...)
	}
	if o.coturn {
		r, err := measure(ctx, o, "coturn", startCoturn)
		if err != nil {
			return fmt.Errorf("coturn: %w", err)
		}
		results = append(results, r...)
	}
	printTable(os.Stdout, o, results)
	return nil
}
