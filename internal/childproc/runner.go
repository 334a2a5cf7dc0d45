package childproc

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/routes"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Mode is the kind of program a child runs.
type Mode int

// The kinds of child.
const (
	// Native is a rehabrtc binary: `rehabrtc signal --port=… --session=…`.
	Native Mode = iota
	// EasyRTC is OpenTera's Node server.js, run as
	// `node --require=<preload> server.js --port=…`.
	EasyRTC
)

// Defaults of [Runner].
const (
	DefaultStartTimeout = 5 * time.Second
	DefaultStopGrace    = 3 * time.Second // after "stop", before SIGTERM
	termGrace           = 2 * time.Second // after SIGTERM, before SIGKILL
	waitDelay           = 500 * time.Millisecond
)

// Reasons of the stop message.
const (
	reasonEnded    = "ended"
	reasonShutdown = "shutdown"
)

// Runner starts one child process per session. Its fields are read-only
// once Start has been called.
type Runner struct {
	Executable string // program path; looked up in PATH when it has no slash
	Script     string // first argument ("signal", "server.js"); may be empty
	WorkingDir string // the children's working directory; "" = the service's
	Mode       Mode
	Bind       string          // address the children listen on; "" = 127.0.0.1
	ICEServers json.RawMessage // sent to native children over the control channel
	// ICE, if set, mints each peer's ICE servers (TURN credentials bound to
	// the invitation) when a native child asks; ICEServers is then its
	// fallback only.
	ICE PeerICE
	// PeerRate and PeerBurst, when set, are passed to native children as
	// --peer-rate and --peer-burst (each peer's message budget).
	PeerRate, PeerBurst float64
	// TrustedProxies, when set, are passed to native children as
	// --trusted-proxies (RehabRTC.trusted_proxies: who may name the client).
	TrustedProxies []string

	StartTimeout time.Duration // ready within; 0 = DefaultStartTimeout
	StopGrace    time.Duration // exit after "stop" within; 0 = DefaultStopGrace

	routes routes.Table // the ports of the ready children, for the gateway
}

var _ session.Runner = (*Runner)(nil)

// Start spawns the child of one session and returns once it is ready, its
// port routed (to be proxied). On failure the child has been killed and
// reaped.
func (r *Runner) Start(ctx context.Context, spec session.RunSpec) (session.Endpoint, error) {
	log := spec.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cmd, cleanup, err := r.command(spec, log)
	if err != nil {
		return nil, fmt.Errorf("session %d child: %w", spec.SessionID, err)
	}
	defer cleanup()
	var ice PeerICE
	if r.Mode == Native {
		ice = r.ICE
	}
	ch, err := spawn(cmd, spec.Gate, ice, spec.SessionID, log, r.Mode, cmp.Or(r.StopGrace, DefaultStopGrace))
	if err != nil {
		return nil, fmt.Errorf("session %d child: %w", spec.SessionID, err)
	}
	if r.Mode == Native {
		init := Msg{Op: opInit, Session: spec.SessionUUID, ICE: r.ICEServers}
		if r.ICE != nil {
			init.PeerICE, init.Policy = true, r.ICE.Policy()
		}
		ch.conn.send(init)
	}
	if err := ch.awaitReady(ctx, cmp.Or(r.StartTimeout, DefaultStartTimeout)); err != nil {
		ch.abort()
		return nil, fmt.Errorf("session %d child %s: %w", spec.SessionID, cmd.Path, err)
	}
	ch.unroute = r.routes.Add(spec.Port, nil) // nil: the gateway proxies to the port
	log.Info("session child started", logKeyPID, ch.pid())
	return ch, nil
}

// Handler reports whether a child serves port; the handler is always nil:
// the gateway proxies to the port.
func (r *Runner) Handler(port int) (http.Handler, bool) { return r.routes.Handler(port) }

// command builds the child's command line and environment. Neither holds a
// key: the port and session id are not secrets. cleanup removes what
// command wrote (the EasyRTC preload file).
func (r *Runner) command(spec session.RunSpec, log *slog.Logger) (*exec.Cmd, func(), error) {
	bind := cmp.Or(r.Bind, "127.0.0.1")
	port := "--port=" + strconv.Itoa(spec.Port)
	env := childEnv(os.Environ())
	var args []string
	cleanup := func() {}
	switch r.Mode {
	case Native:
		args = append(scriptArg(r.Script), port, "--session="+strconv.FormatInt(spec.SessionID, 10),
			"--bind="+bind, "--log-level="+levelName(log))
		if r.PeerRate > 0 {
			args = append(args, "--peer-rate="+strconv.FormatFloat(r.PeerRate, 'g', -1, 64))
		}
		if r.PeerBurst > 0 {
			args = append(args, "--peer-burst="+strconv.FormatFloat(r.PeerBurst, 'g', -1, 64))
		}
		if len(r.TrustedProxies) > 0 {
			args = append(args, "--trusted-proxies="+strings.Join(r.TrustedProxies, ","))
		}
	case EasyRTC:
		preload, err := writePreload()
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.Remove(preload) }
		args = append(append([]string{"--require=" + preload}, scriptArg(r.Script)...), port)
		env = append(env, envEasyRTCKey+"="+session.NewKey(), envBind+"="+bind)
	default:
		return nil, nil, fmt.Errorf("unknown child mode %d", r.Mode)
	}
	cmd := exec.Command(r.Executable, args...)
	cmd.Dir, cmd.Env, cmd.WaitDelay = r.WorkingDir, env, waitDelay
	cmd.SysProcAttr = sysProcAttr()
	return cmd, cleanup, nil
}

func scriptArg(script string) []string {
	if script == "" {
		return nil
	}
	return []string{script}
}

// childEnv is the service's environment without the variables that carry
// rehabrtc's own secrets (REHABRTC_API_KEYS, REHABRTC_REDIS_PASSWORD, …):
// a child needs none of them.
func childEnv(environ []string) []string {
	out := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "REHABRTC_") {
			out = append(out, kv)
		}
	}
	return out
}

// levelName is the lowest level log lets through, for the child's
// --log-level: the child then produces nothing the parent would drop.
func levelName(log *slog.Logger) string {
	ctx := context.Background()
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if log.Enabled(ctx, l) {
			return strings.ToLower(l.String())
		}
	}
	return "error"
}
