package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/apikey"
	"github.com/rehabrtc/rehabrtc/internal/clientaddr"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/ehrc"
	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/feed"
	"github.com/rehabrtc/rehabrtc/internal/gateway"
	"github.com/rehabrtc/rehabrtc/internal/httpapi"
	"github.com/rehabrtc/rehabrtc/internal/httpserver"
	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
)

// drainTimeout bounds a graceful shutdown; a second signal cuts it short.
const drainTimeout = 10 * time.Second

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (OpenTera's VideoRehabService.json works as is); none = embedded defaults")
	forceRelay := fs.Bool("test-force-relay", false, "tests only: pages use relayed (TURN) candidates only")
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	redis.SetLogger(redisLogs{log}) // go-redis keeps one logger per process
	srv, err := newServer(cfg, log)
	if err != nil {
		return err
	}
	srv.turn.ice.ForceRelay = *forceRelay
	return srv.run(ctx)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.RehabRTC.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.RehabRTC.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// hubClient names a WebSocket's client for the hub's per-address cap by
// the service's one rule. A trusted proxy that did not say who its client
// is gets "": the hub then counts it only in its total cap, rather than
// putting every client of that proxy under one address's cap.
func hubClient(rule clientaddr.Rule) func(*http.Request) string {
	return func(r *http.Request) string {
		a, ok := rule.Addr(r)
		if !ok || rule.Trusted(a) {
			return ""
		}
		return a.String()
	}
}

// server is the composition root: the one place that picks implementations.
type server struct {
	cfg      *config.Config
	log      *slog.Logger
	store    *boltstore.Store
	mgr      *session.Manager
	runner   runner // also the gateway's port→handler table
	counters *hub.Counters
	pool     *ports.Pool
	apiKeys  []string
	keys     *apikey.Guard     // shared by the API and the EHRC routes: guesses on either count together
	clients  clientaddr.Rule   // who the client of a request is, for every per-address limit
	ot       *opentera.Interop // nil without Redis
	turn     *turnSetup        // TURN credentials and the embedded server (turn.go)
	feed     *feed.Broker      // the dashboards' live events
	cl       *clusterNode      // nil unless RehabRTC.cluster.enabled
	media    *mediaSockets     // the SFU's ICE ports; nil when sessions run in child processes
	stopping atomic.Bool       // shutting down or draining: /readyz says so, load balancers move on
}

func newServer(cfg *config.Config, log *slog.Logger) (*server, error) {
	dir := cfg.RehabRTC.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	keys, err := apiKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	ot, err := opentera.Open(context.Background(), cfg, log) // may take Service.port/hostname from Redis
	if err != nil {
		return nil, err
	}
	st, err := boltstore.Open(filepath.Join(dir, ot.DBName()))
	if err != nil {
		ot.Close()
		return nil, err
	}
	logStore(log, filepath.Join(dir, ot.DBName()), st.Opened())
	ice, err := json.Marshal(cfg.RehabRTC.ICEServers)
	if err != nil {
		st.Close()
		ot.Close()
		return nil, err
	}
	s := &server{cfg: cfg, log: log, store: st, counters: &hub.Counters{}, apiKeys: keys, ot: ot,
		keys: apikey.New(keys, apikey.DefaultLimits(), nil), clients: clientaddr.New(cfg.TrustedProxyPrefixes()),
		pool: sessionPorts(cfg, log), turn: newTURN(cfg), feed: &feed.Broker{}}
	s.keys.SetLogger(log.With(logKeyComponent, "apikey"))
	s.keys.SetClientAddress(s.clients.Addr)
	if s.media, err = openMedia(cfg, log); err != nil {
		st.Close()
		ot.Close()
		return nil, err
	}
	// In process, every hub tells the feed who joins and leaves.
	runner, err := sessionRunner(cfg, endpoint.Options{ICEServers: ice, Counters: s.counters, ICE: peerICE{s.turn.ice}, Presence: s.feed, // in-process, or a child each
		SFU: s.media.Engine(), MediaMode: cfg.RehabRTC.MediaMode,
		RateLimit: cfg.RehabRTC.PeerRateLimit.PerSecond, RateBurst: cfg.RehabRTC.PeerRateLimit.Burst,
		ClientAddress: hubClient(s.clients)})
	if err != nil {
		s.media.Close()
		st.Close()
		ot.Close()
		return nil, err
	}
	s.runner = runner
	var (
		records session.Store = st
		pool    session.Ports = s.pool
		homes   session.Homes // nil: the only node
	)
	if cfg.RehabRTC.Cluster.Enabled {
		if s.cl, err = joinCluster(cfg, s.counters, log); err != nil {
			s.media.Close()
			st.Close()
			ot.Close()
			return nil, err
		}
		records, pool, homes = s.cl.store, s.cl.ports, s.cl.homes
		ot.RunOnce(s.cl.once)
	}
	s.mgr = session.NewManager(session.Config{
		Events:     feed.Sinks{ot.Events(), s.feed},
		Store:      ot.Records(records, log),
		Homes:      homes,
		Runner:     runner,
		Ports:      pool,
		URLs:       session.URLs{Scheme: cfg.URLScheme(), Host: cfg.WebRTC.Hostname, Port: cfg.WebRTC.ExternalPort},
		ServiceKey: cfg.Service.Name,
		Logger:     log.With(logKeyComponent, "session"),
	})
	if s.cl != nil {
		s.cl.mgr.Store(s.mgr)
	}
	return s, nil
}

// run serves until ctx ends, then drains: peers are told the server restarts,
// sessions stay recorded as running and come back at the next start.
func (s *server) run(ctx context.Context) error {
	defer s.store.Close()
	defer s.ot.Close() // Redis last
	defer s.leaveCluster()
	defer s.media.Close() // after every session, so every router, has stopped
	if err := s.mgr.Restore(ctx); err != nil {
		return fmt.Errorf("restore sessions: %w", err)
	}
	if err := s.turn.start(ctx, s.cfg, s.mgr, s.log); err != nil {
		s.mgr.Shutdown(context.Background())
		return err
	}
	defer s.turn.close(s.log) // after the HTTP servers: the shared TLS port feeds it
	claimCtx, stopClaims := context.WithCancel(ctx)
	var claims sync.WaitGroup
	defer claims.Wait()
	defer stopClaims()
	if s.cl != nil {
		claims.Go(func() { s.cl.claimLoop(claimCtx, s.mgr, s.log.With(logKeyComponent, "cluster")) })
	}
	s.ot.Start(s.mgr)
	api := httpapi.New(httpapi.Config{
		Sessions: s.mgr, APIKeys: s.apiKeys, Keys: s.keys, Backup: s.store.WriteTo, Metrics: s.metrics(), Ready: s.ready, Events: s.feed,
		Logger: s.log.With(logKeyComponent, "api"),
	})
	consult, consultInternal, stopConsult, err := s.startConsultations(ctx)
	if err != nil {
		s.ot.Stop(context.Background())
		s.mgr.Shutdown(context.Background())
		return err
	}
	// EHRC apps call root paths, on the service port as on the gateway.
	servers, err := s.listen(gateway.Prefer(ehrc.IsRoute, consult, api), consult, consultInternal)
	if err != nil {
		stopConsult(context.Background())
		s.ot.Stop(context.Background())
		s.mgr.Shutdown(context.Background())
		return err
	}
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	purgeCtx, stopPurge := context.WithCancel(context.Background())
	defer stopPurge()
	wg.Go(func() { s.mgr.RunPurger(purgeCtx, s.cfg.RehabRTC.PersonalDataRetention(), 0) })
	for _, hs := range servers {
		wg.Go(func() {
			if err := hs.serve(s.cfg); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	s.log.Info("rehabrtc ready", "version", versionString(), "service", s.cfg.ServiceAddr(),
		"gateway", gatewayDesc(s.cfg), "sessions_restored", s.mgr.Running())
	var runErr error
	drain := s.cl != nil && s.cfg.RehabRTC.Cluster.DrainOnStop
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	case <-s.cl.lost():
		runErr = errNodeLost
	case <-s.cl.drainRequested():
		s.log.Info("drain requested (rehabrtc cluster drain)")
		drain = true
	}
	s.stopping.Store(true)
	stopClaims()
	claims.Wait()
	s.log.Info("shutting down: telling peers to reconnect")
	stopForce := forceOnSecondSignal(s.log)
	defer stopForce()
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	s.ot.Stop(dctx)   // no more RPCs; queued OpenTera events go out
	stopConsult(dctx) // before the manager: recorded rooms stop cleanly
	stopPurge()
	if drain && runErr == nil {
		s.cl.drain(dctx, s.mgr, s.log.With(logKeyComponent, "cluster")) // the others take the sessions at once
	} else {
		s.mgr.Shutdown(dctx) // hubs own the hijacked WebSockets: close them first
	}
	s.feed.Close() // event streams end: the servers need not wait for them
	for _, hs := range servers {
		if err := hs.srv.Shutdown(dctx); err != nil {
			hs.srv.Close()
		}
	}
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

type httpServer struct {
	srv *http.Server
	ln  net.Listener
	tls bool
}

func (s *server) listen(api, consult, consultInternal http.Handler) ([]*httpServer, error) {
	access := s.log.With(logKeyComponent, "http")
	list := []*httpServer{{srv: newHTTPServer(gateway.AccessLog(access, s.clients.String, api))}}
	addrs := []string{s.cfg.ServiceAddr()}
	if gw := s.cfg.RehabRTC.Gateway; gw.Enabled {
		g := gateway.New(api, s.runner, s.cfg.RehabRTC.SessionBind)
		if s.cl != nil {
			g.WithHomes(s.cl.homes).CountProxied(&s.cl.stats.sessionProxied) // another node's session: proxied to it
		}
		g.Mount(ehrc.IsRoute, consult) // EHRC apps call root paths
		// The public names; CheckHost adds loopback.
		hosts := append([]string{s.cfg.WebRTC.Hostname}, gw.Hosts...)
		list = append(list, &httpServer{srv: newHTTPServer(gateway.AccessLog(access, s.clients.String, gateway.CheckHost(hosts, g))), tls: s.cfg.GatewayTLS()})
		addrs = append(addrs, s.cfg.GatewayAddr())
	}
	if s.cl != nil {
		h := s.cl.internalHandler(s.mgr, api, s.runner, s.cfg.RehabRTC.SessionBind)
		h = gateway.Prefer(ehrc.IsRoute, consultInternal, h) // the consultations, when this node serves them
		list = append(list, &httpServer{srv: newHTTPServer(gateway.AccessLog(access, s.clients.String, h))})
		addrs = append(addrs, s.cfg.RehabRTC.Cluster.InternalAddr)
	}
	for i, hs := range list {
		ln, err := net.Listen("tcp", addrs[i])
		if err == nil && hs.tls && sharesTLS(s.cfg) {
			ln, err = s.shareTLS(ln)
			hs.tls = false // the mux has done the hand-shake
		}
		if err != nil {
			for _, prev := range list[:i] {
				prev.ln.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addrs[i], err)
		}
		hs.ln = ln
	}
	return list, nil
}

// sessionPorts is the port pool. Every session listens on its port (in
// process or in a child), so a start probes the port first and skips one
// that another process holds.
func sessionPorts(cfg *config.Config, log *slog.Logger) *ports.Pool {
	w := cfg.WebRTC
	if warn := ports.EphemeralOverlap(ports.EphemeralRangeFile, w.LocalBasePort, w.MaxSessions); warn != "" {
		log.Warn(warn)
	}
	probe := ports.BindProbe(cmp.Or(cfg.RehabRTC.SessionBind, "127.0.0.1"))
	return ports.NewProbed(w.LocalBasePort, w.MaxSessions, probe, log.With(logKeyComponent, "ports"))
}

// shareTLS terminates TLS on the gateway's listener and sends the
// connections that speak STUN to the TURN server (docs/network.md).
func (s *server) shareTLS(ln net.Listener) (net.Listener, error) {
	gw := s.cfg.RehabRTC.Gateway
	cert, err := tls.LoadX509KeyPair(gw.TLSCert, gw.TLSKey)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("gateway certificate: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	return s.turn.srv.ShareTLS(ln, conf)
}

func newHTTPServer(h http.Handler) *http.Server {
	return httpserver.New(h, httpserver.Defaults())
}

func (hs *httpServer) serve(cfg *config.Config) error {
	if hs.tls {
		gw := cfg.RehabRTC.Gateway
		return hs.srv.ServeTLS(hs.ln, gw.TLSCert, gw.TLSKey)
	}
	return hs.srv.Serve(hs.ln)
}

func gatewayDesc(cfg *config.Config) string {
	if !cfg.RehabRTC.Gateway.Enabled {
		return "off"
	}
	return cfg.GatewayAddr()
}

// forceOnSecondSignal exits at once if another signal comes during drain.
func forceOnSecondSignal(log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ch:
			log.Warn("second signal: exiting now")
			os.Exit(1)
		case <-done:
		}
	})
	return func() { signal.Stop(ch); close(done); wg.Wait() }
}

// leaveCluster leaves the cluster, if this node is in one, after the
// sessions have stopped: its leases and ports are free at once.
func (s *server) leaveCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := s.cl.close(ctx); err != nil {
		s.log.Warn("leaving the cluster", "err", err)
	}
}
