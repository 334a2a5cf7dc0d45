package ehrc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/apikey"
	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/socketio"
	"github.com/rehabrtc/rehabrtc/internal/web"
)

// Limits bound what unauthenticated clients can make the server hold.
// Zero fields take the defaults.
type Limits struct {
	Namespaces int // registered namespaces; default 10000
	// PendingRooms bounds the room ids handed out and never entered; past
	// it the oldest is dropped (default 10000).
	PendingRooms int
	RoomTTL      time.Duration // how long such a room id stays valid; default 10 min
	// RoomBurst room ids at once per client address, then one every
	// RoomInterval (defaults 20 and 3 s).
	RoomBurst    int
	RoomInterval time.Duration
	// Members bounds the connections without the doctor token per
	// namespace (default 256), MembersPerAddress the same per client
	// address (default 16), DoctorConns the connections with the token
	// (default 4): anonymous connections never take the doctor's place.
	Members, MembersPerAddress, DoctorConns int
	Rooms                                   int // live rooms per namespace; default 64
}

func (l Limits) withDefaults() Limits {
	l.Namespaces = orDefault(l.Namespaces, 10000)
	l.PendingRooms = orDefault(l.PendingRooms, 10000)
	l.RoomTTL = orDefault(l.RoomTTL, 10*time.Minute)
	l.RoomBurst = orDefault(l.RoomBurst, 20)
	l.RoomInterval = orDefault(l.RoomInterval, 3*time.Second)
	l.Members = orDefault(l.Members, 256)
	l.MembersPerAddress = orDefault(l.MembersPerAddress, 16)
	l.DoctorConns = orDefault(l.DoctorConns, 4)
	l.Rooms = orDefault(l.Rooms, 64)
	return l
}

// Compat makes unchanged EHRC apps work, at a cost main warns about at
// start-up (docs/ehrc.md, "Compatibility mode").
type Compat struct {
	Enabled bool
	// TrustedBackends may create and remove namespaces without the API
	// key, as EHRC's backend does.
	TrustedBackends []netip.Prefix
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Config wires a Service; main fills it in.
type Config struct {
	APIKeys    []string        // create-namespace and remove-namespace need one (Bearer)
	Keys       *apikey.Guard   // checks APIKeys and backs off guessers; nil = one over APIKeys
	Sessions   Sessions        // records promoted rooms; nil = promote-room is refused
	ICEServers json.RawMessage // handed to native clients in welcome
	// ICE, if set, mints each member's own ICE servers (TURN credentials
	// that die when it leaves), in the native welcome (renewed by the hub)
	// and in an ice-servers event to Socket.IO connections; it replaces
	// ICEServers.
	ICE      ICEMinter
	Counters *hub.Counters // shared with the session hubs; may be nil
	Logger   *slog.Logger
	Limits   Limits
	Now      func() time.Time // nil = time.Now (room expiry)
	// AllowedOrigins are the browser origins of apps served from
	// elsewhere ("https://app.example.org"): they get CORS on the REST
	// routes and on polling, and may open WebSockets. In compatibility
	// mode they are also the origins a doctor may come from without the
	// token. Empty: same origin only.
	AllowedOrigins []string
	Compat         Compat
	// Store keeps namespaces and entered rooms across restarts; nil = in
	// memory only.
	Store Store
	// ClientAddress names the client of a request for the per-address
	// limits; nil = the TCP peer's IP.
	ClientAddress func(r *http.Request) string
	// SocketIO tunes the Socket.IO server (Path, Logger, Authorize,
	// OnConnect, AllowedOrigins and ClientAddress are set by the Service).
	SocketIO socketio.Options
}

// Service is the EHRC-compatible consultation API: the REST routes, the
// Socket.IO endpoint and the native WebSocket, over one set of namespaces.
type Service struct {
	cfg     Config
	log     *slog.Logger
	reg     *registry
	rooms   *limiter // create-room per client address
	sio     *socketio.Server
	handler http.Handler

	bgMu     sync.Mutex // guards bgClosed and bg.Add
	bgClosed bool
	bg       sync.WaitGroup // recording starts and stops
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// New returns a Service. It does not listen: mount Handler for the paths
// IsRoute accepts.
func New(cfg Config) *Service {
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientAddress == nil {
		cfg.ClientAddress = socketio.RemoteHost
	}
	if cfg.Keys == nil {
		cfg.Keys = apikey.New(cfg.APIKeys, apikey.Limits{}, nil)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, reg: newRegistry(cfg.Limits, cfg.Now),
		rooms: newLimiter(cfg.Limits.RoomBurst, cfg.Limits.RoomInterval, cfg.Now)}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	opts := cfg.SocketIO
	opts.Path, opts.Authorize, opts.OnConnect = socketio.DefaultPath, s.authorize, s.onConnect
	opts.AllowedOrigins, opts.ClientAddress = cfg.AllowedOrigins, cfg.ClientAddress
	opts.Logger = cfg.Logger.With(logKeyComponent, "socketio")
	s.sio = socketio.NewServer(opts)
	s.handler = web.SecurityHeaders(s.routes())
	return s
}

// restRoutes are EHRC's routes; each answers at /api/<route> (where EHRC
// mounts them) and at /<route> (where its README documents them).
var restRoutes = [...]string{"create-namespace", "remove-namespace", "check-availability", "create-room", "join-room"}

// NativePrefix starts the path of the native WebSocket: /ehrc/ws/<namespaceId>.
const NativePrefix = "/ehrc/ws/"

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	handlers := [...]func(http.ResponseWriter, *http.Request) error{
		s.createNamespace, s.removeNamespace, s.checkAvailability, s.createRoom, s.joinRoom,
	}
	for i, name := range restRoutes {
		for _, prefix := range []string{"/api/", "/"} {
			mux.Handle("GET "+prefix+name, s.rest(handlers[i]))
			mux.Handle("OPTIONS "+prefix+name, http.HandlerFunc(s.preflight))
		}
	}
	mux.Handle(socketio.DefaultPath, s.sio)
	mux.Handle("GET "+NativePrefix+"{namespace}", s.rest(s.serveNative))
	return mux
}

// IsRoute reports whether path belongs to the Service: the REST routes
// under / and /api/, /socket.io/ and the native WebSocket. The gateway and
// the service port send those paths to Handler.
func IsRoute(path string) bool {
	name, ok := strings.CutPrefix(strings.TrimPrefix(path, "/api"), "/")
	if ok {
		for _, r := range restRoutes {
			if name == r {
				return true
			}
		}
	}
	return path == strings.TrimSuffix(socketio.DefaultPath, "/") ||
		strings.HasPrefix(path, socketio.DefaultPath) || strings.HasPrefix(path, NativePrefix)
}

// Handler serves the paths IsRoute accepts.
func (s *Service) Handler() http.Handler { return s.handler }

// acquire returns the office of namespace id, creating it for the first
// connection; every acquire is paired with a release.
func (s *Service) acquire(id string) (*office, error) {
	ns := s.reg.lookup(id)
	if ns == nil {
		return nil, errNoNamespace
	}
	return s.acquireNS(ns)
}

// acquireNS is acquire for a namespace already looked up: it fails if ns
// was removed meanwhile.
func (s *Service) acquireNS(ns *namespace) (*office, error) {
	g := s.reg
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, errShuttingDown
	case ns == nil || g.nss[ns.id] != ns:
		return nil, errNoNamespace
	case ns.office == nil:
		ns.office = s.newOffice(ns)
		g.lastOffice++
		ns.office.num = g.lastOffice
		g.offices[ns.office.num] = ns.office
	}
	ns.office.refs++
	return ns.office, nil
}

// release ends a use of o; the last one frees the office (its hub holds no
// connection by then).
func (s *Service) release(o *office) {
	g := s.reg
	g.mu.Lock()
	o.refs--
	if o.refs == 0 { // freed, or removed with its namespace: never used again
		delete(g.offices, o.num)
	}
	free := o.refs == 0 && o.ns.office == o
	if free {
		o.ns.office = nil
	}
	g.mu.Unlock()
	if free {
		o.close(context.Background(), hub.SessionEnded) // nothing left to wait for
	}
}

// background runs fn (a recording start or stop) in a goroutine that Close
// waits for; false once Close has stopped taking work.
func (s *Service) background(fn func(ctx context.Context)) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return false
	}
	s.bg.Go(func() {
		ctx, cancel := context.WithTimeout(s.bgCtx, 30*time.Second)
		defer cancel()
		fn(ctx)
	})
	return true
}

// Close disconnects every client (Socket.IO clients see their transport
// close and reconnect; native clients get server-shutdown), which ends
// every room and stops their recordings, then waits for everything it
// started, or until ctx ends.
func (s *Service) Close(ctx context.Context) error {
	g := s.reg
	g.mu.Lock()
	g.closed = true
	var offices []*office
	for _, ns := range g.nss {
		if ns.office != nil {
			offices = append(offices, ns.office)
		}
	}
	g.mu.Unlock()
	err := s.sio.Close(ctx)
	for _, o := range offices {
		o.close(ctx, hub.ServerShutdown)
	}
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.bgCancel() // abort the Manage calls in flight
		<-done
		err = ctx.Err()
	}
	s.bgCancel()
	return err
}
