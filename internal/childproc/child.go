package childproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/httpserver"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Timeouts of the child side.
const (
	initTimeout  = 5 * time.Second // the parent sends init right after spawning
	gateTimeout  = 3 * time.Second // one admission asked of the parent
	closeTimeout = 5 * time.Second // peers told, connections closed
)

// ChildEndpoint is what a child serves: the session's pages and hub
// (endpoint.Endpoint in rehabrtc).
type ChildEndpoint interface {
	Handler() http.Handler
	Kick(session.Identity)
	Peers() []session.Peer
	Close(ctx context.Context, why session.StopReason) error
}

// Child configures [Serve].
type Child struct {
	Control   net.Conn // the control channel (fd 3)
	Addr      string   // host:port to listen on
	SessionID int64
	Logger    *slog.Logger
	// Build makes the endpoint once the parent has sent init. spec.Gate asks
	// the parent; so does ice.Peer, when the parent mints per-peer TURN
	// credentials.
	Build func(spec session.RunSpec, ice ICE) ChildEndpoint
}

// childState is what the control reader of a child needs.
type childState struct {
	conn  *conn
	ep    atomic.Pointer[ChildEndpoint]
	initc chan Msg    // the init message
	stopc chan string // the stop reason
}

// Serve runs one session until the parent says stop, the parent goes away
// (the control channel closes) or ctx ends (SIGTERM).
func Serve(ctx context.Context, cfg Child) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := &childState{conn: newConn(cfg.Control), initc: make(chan Msg, 1), stopc: make(chan string, 1)}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer st.conn.close()
	wg.Go(func() { st.conn.run(st.handle) })

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err // the parent logs this line and reports it
	}
	defer ln.Close()
	init, err := st.waitInit(ctx)
	if err != nil {
		return err
	}
	ice := ICE{Servers: init.ICE}
	if init.PeerICE {
		ice.Peer = remoteICE{c: st.conn, static: init.ICE, policy: init.Policy}
	}
	ep := cfg.Build(session.RunSpec{
		SessionID: cfg.SessionID, SessionUUID: init.Session, Port: ln.Addr().(*net.TCPAddr).Port,
		Gate: remoteGate{st.conn}, Logger: log,
	}, ice)
	st.ep.Store(&ep)
	srv := httpserver.New(ep.Handler(), httpserver.Defaults())
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("session listener failed", logKeyErr, err)
		}
	})
	if err := st.conn.send(Msg{Op: opReady}); err != nil {
		log.Warn("cannot report ready", logKeyErr, err)
	}
	log.Info("session child ready", logKeyAddr, ln.Addr().String())
	why := st.waitStop(ctx)
	return shutdown(ep, srv, why)
}

func (st *childState) waitInit(ctx context.Context) (Msg, error) {
	t := time.NewTimer(initTimeout)
	defer t.Stop()
	select {
	case m := <-st.initc:
		return m, nil
	case <-st.conn.closed:
		return Msg{}, errors.New("control channel closed before init")
	case <-ctx.Done():
		return Msg{}, ctx.Err()
	case <-t.C:
		return Msg{}, errors.New("no init from the parent")
	}
}

// waitStop returns why the session ends: the parent's word, else a shutdown
// (the peers reconnect to whatever serves the session next).
func (st *childState) waitStop(ctx context.Context) session.StopReason {
	select {
	case r := <-st.stopc:
		if r == reasonEnded {
			return session.StopEnded
		}
	case <-st.conn.closed:
	case <-ctx.Done():
	}
	return session.StopShutdown
}

func shutdown(ep ChildEndpoint, srv *http.Server, why session.StopReason) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := ep.Close(ctx, why) // hubs own the hijacked WebSockets: close them first
	if serr := srv.Shutdown(ctx); serr != nil {
		srv.Close()
		err = errors.Join(err, serr)
	}
	return err
}

// handle runs in the control reader: it never blocks.
func (st *childState) handle(m Msg) {
	switch m.Op {
	case opInit:
		select {
		case st.initc <- m:
		default:
		}
	case opStop:
		select {
		case st.stopc <- m.Reason:
		default:
		}
	case opKick:
		if ep := st.ep.Load(); ep != nil {
			(*ep).Kick(session.Identity{Kind: m.Kind, UUID: m.UUID})
		}
	case opPeers:
		var peers []session.Peer
		if ep := st.ep.Load(); ep != nil {
			peers = (*ep).Peers()
		}
		st.conn.send(Msg{Op: opReply, ID: m.ID, OK: true, Peers: peers})
	}
}

// remoteGate is the session Gate of a child: every question goes to the
// parent, which alone holds the keys.
type remoteGate struct{ c *conn }

func (g remoteGate) Admit(ctx context.Context, key, uuid string) (session.Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, gateTimeout)
	defer cancel()
	r, err := g.c.call(ctx, Msg{Op: opAdmit, Key: key, UUID: uuid})
	if err != nil {
		return session.Identity{}, fmt.Errorf("%w: %v", session.ErrDenied, err)
	}
	if !r.OK {
		return session.Identity{}, session.ErrDenied
	}
	return session.Identity{Kind: r.Kind, UUID: r.UUID}, nil
}

func (g remoteGate) Valid(ctx context.Context, key string) bool {
	ctx, cancel := context.WithTimeout(ctx, gateTimeout)
	defer cancel()
	r, err := g.c.call(ctx, Msg{Op: opValid, Key: key})
	return err == nil && r.OK
}
