// Command rehabrtc is the video-session service for telerehabilitation and
// telemedicine: one binary that serves the session API, the gateway, the
// session pages and their signaling.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `rehabrtc: video sessions for telerehabilitation and telemedicine

Usage:
  rehabrtc serve [--config FILE]        run the service (no file: embedded defaults)
  rehabrtc session <command> [flags]    start, stop, invite, remove, list, show sessions
  rehabrtc signal [flags]               run one session as a child of serve (process-per-session mode)
  rehabrtc cluster status [flags]       the nodes of a cluster, their load and sessions
  rehabrtc config default               print the full default configuration file
  rehabrtc config check --config FILE   validate a configuration file
  rehabrtc store check|backup FILE      verify the session store, or copy it consistently (online)
  rehabrtc version                      print the version

Run "rehabrtc <command> --help" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsageShown) {
			fmt.Fprintln(os.Stderr, "rehabrtc:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errUsageShown means help was printed; exit quietly (0 for --help).
var errUsageShown = errors.New("usage shown")

func exitCode(err error) int {
	if errors.Is(err, errUsageShown) {
		return 0
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "session":
		return sessionCmd(ctx, args[1:], stdout, stderr)
	case "signal":
		return signalCmd(ctx, args[1:], stderr)
	case "cluster":
		return clusterCmd(ctx, args[1:], stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "store":
		return storeCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
