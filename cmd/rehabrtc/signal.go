package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rehabrtc/rehabrtc/internal/childproc"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

const signalUsage = `Usage:
  rehabrtc signal --port=PORT --session=ID [--bind=ADDR] [--log-level=LEVEL]

Serves one session's pages and hub on ADDR:PORT, as a child of
"rehabrtc serve" in process-per-session mode (WebRTC.executable "rehabrtc").
It holds no key: it asks its parent over the control channel the parent
hands it as file descriptor 3, so it is not meant to be started by hand.
`

// controlFD is the child's end of the control channel (os/exec ExtraFiles[0]).
const controlFD = 3

func signalCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("signal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, signalUsage) }
	port := fs.Int("port", 0, "session port")
	id := fs.Int64("session", 0, "session id (for the logs)")
	bind := fs.String("bind", "127.0.0.1", "address to listen on")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *port < 1 || *port > 65535 || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("signal: want --port between 1 and 65535 and no other argument")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("signal: --log-level: %w", err)
	}
	control, err := childproc.ControlFromFD(controlFD)
	if err != nil {
		return fmt.Errorf("signal: %w (it is started by rehabrtc serve)", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv})) // the parent re-logs each record
	return childproc.Serve(ctx, childproc.Child{
		Control:   control,
		Addr:      net.JoinHostPort(*bind, strconv.Itoa(*port)),
		SessionID: *id,
		Logger:    log,
		Build: func(spec session.RunSpec, ice json.RawMessage) childproc.ChildEndpoint {
			return endpoint.New(spec, endpoint.Options{ICEServers: ice})
		},
	})
}

// sessionRunner picks how sessions run: in this process when
// WebRTC.executable is empty, else one child process each (OpenTera's
// process-per-session mode):
//
//   - executable "rehabrtc" is this very binary, script "signal" by default;
//   - script "signal" with any other executable is another rehabrtc binary;
//   - anything else is OpenTera's EasyRTC server: node server.js.
func sessionRunner(cfg *config.Config, opts endpoint.Options) (session.Runner, error) {
	w := cfg.WebRTC
	if w.Executable == "" {
		return &endpoint.Runner{Bind: cfg.RehabRTC.SessionBind, Options: opts}, nil
	}
	r := &childproc.Runner{Executable: w.Executable, Script: w.Script, WorkingDir: w.WorkingDirectory,
		Mode: childproc.EasyRTC, Bind: cmp.Or(cfg.RehabRTC.SessionBind, "127.0.0.1"), ICEServers: opts.ICEServers}
	if w.Executable == "rehabrtc" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("WebRTC.executable: cannot find this program: %w", err)
		}
		r.Executable, r.Script = self, cmp.Or(w.Script, "signal")
	}
	if r.Script == "signal" || (r.Script == "" && filepath.Base(r.Executable) == "rehabrtc") {
		r.Mode, r.Script = childproc.Native, "signal"
	}
	return r, nil
}
