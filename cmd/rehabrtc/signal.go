package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rehabrtc/rehabrtc/internal/childproc"
	"github.com/rehabrtc/rehabrtc/internal/clientaddr"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/gateway"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

const signalUsage = `Usage:
  rehabrtc signal --port=PORT --session=ID [--bind=ADDR] [--log-level=LEVEL]
                  [--peer-rate=N] [--peer-burst=N] [--trusted-proxies=CIDR,...]

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
	rate := fs.Float64("peer-rate", 0, "messages per second of each peer's budget (0: the hub's default)")
	burst := fs.Float64("peer-burst", 0, "burst of each peer's message budget (0: the hub's default)")
	proxies := fs.String("trusted-proxies", "", "CIDRs, comma-separated, of proxies that may name the client with X-Forwarded-For, besides loopback (the gateway)")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if *port < 1 || *port > 65535 || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("signal: want --port between 1 and 65535 and no other argument")
	}
	trusted, err := childTrusted(*proxies)
	if err != nil {
		return fmt.Errorf("signal: --trusted-proxies: %w", err)
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
		Build: func(spec session.RunSpec, ice childproc.ICE) childproc.ChildEndpoint {
			opts := endpoint.Options{ICEServers: ice.Servers, RateLimit: *rate, RateBurst: *burst,
				ClientAddress: hubClient(clientaddr.New(trusted))}
			if ice.Peer != nil {
				opts.ICE = ice.Peer // the parent mints each peer's TURN credentials
			}
			return endpoint.New(spec, opts)
		},
	})
}

// childTrusted is what a child trusts to name the client: loopback, from
// where the gateway forwards to it, and the CIDRs of --trusted-proxies.
func childTrusted(list string) ([]netip.Prefix, error) {
	out := clientaddr.Loopback()
	for c := range strings.SplitSeq(list, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil || p.Bits() == 0 {
			return nil, fmt.Errorf("%q is not a CIDR of proxies", c)
		}
		out = append(out, p)
	}
	return out, nil
}

// runner is a session.Runner that also routes its sessions' ports, for the
// gateway.
type runner interface {
	session.Runner
	gateway.Sessions
}

// sessionRunner picks how sessions run: in this process when
// WebRTC.executable is empty, else one child process each (OpenTera's
// process-per-session mode; childproc.ProgramFor says which program).
func sessionRunner(cfg *config.Config, opts endpoint.Options) (runner, error) {
	w := cfg.WebRTC
	if w.Executable == "" {
		return &endpoint.Runner{Bind: cfg.RehabRTC.SessionBind, Options: opts}, nil
	}
	p, err := childproc.ProgramFor(w.Executable, w.Script)
	if err != nil {
		return nil, err
	}
	return &childproc.Runner{Executable: p.Executable, Script: p.Script, Mode: p.Mode, WorkingDir: w.WorkingDirectory,
		Bind: cmp.Or(cfg.RehabRTC.SessionBind, "127.0.0.1"), ICEServers: opts.ICEServers, ICE: opts.ICE,
		PeerRate: opts.RateLimit, PeerBurst: opts.RateBurst, TrustedProxies: cfg.RehabRTC.TrustedProxies}, nil
}
