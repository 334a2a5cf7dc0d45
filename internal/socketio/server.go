package socketio

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults, the values socket.io 4 uses.
const (
	DefaultPath           = "/socket.io/"
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 20 * time.Second
	DefaultConnectTimeout = 45 * time.Second
	DefaultMaxPayload     = 1_000_000
)

// Fixed limits. They bound what one connection can make the server hold.
const (
	// sendQueueLen is the number of outgoing packets buffered per connection;
	// a client that lets more pile up is disconnected (house style 4/5).
	sendQueueLen = 256
	// maxNamespaces is the number of namespaces one connection may join.
	maxNamespaces = 16
	// maxPendingAcks is the number of EmitWithAck calls awaiting an answer
	// per socket.
	maxPendingAcks = 256
	// upgradeTimeout bounds a polling → WebSocket upgrade (socket.io: 10 s).
	upgradeTimeout = 10 * time.Second
)

// Log attribute keys.
const (
	logKeyConn      = "conn" // a number: session ids are secret
	logKeyNamespace = "namespace"
	logKeySocket    = "socket"
	logKeyEvent     = "event"
	logKeyReason    = "reason"
	logKeyCallback  = "callback"
	logKeyPanic     = "panic"
	logKeyStack     = "stack"
	logKeyErr       = "err"
)

// Options configures a Server. Zero fields take the defaults above.
type Options struct {
	// Path is where the server answers, with leading and trailing slash.
	Path string
	// PingInterval and PingTimeout drive the server-initiated heartbeat: a
	// ping every PingInterval, and the client must answer within PingTimeout.
	// PingTimeout also bounds every write to a client.
	PingInterval, PingTimeout time.Duration
	// ConnectTimeout closes a connection that has joined no namespace by then.
	ConnectTimeout time.Duration
	// MaxPayload bounds one polling body and one WebSocket message, in bytes.
	MaxPayload int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Authorize decides whether a client may join namespace, given the
	// handshake request (body and context no longer usable) and the CONNECT
	// auth payload (nil when absent). The returned value becomes Socket.Data.
	// Returning an error refuses the namespace with CONNECT_ERROR; see
	// ConnectError for the message the client sees. Nil Authorize accepts
	// the main namespace "/" only.
	Authorize func(r *http.Request, namespace string, auth json.RawMessage) (any, error)
	// OnConnect is called for every new socket, before any of its events.
	OnConnect func(s *Socket)
	// AllowedOrigins lists the browser origins ("https://app.example.org")
	// allowed besides the server's own: they get CORS headers on polling
	// and may open WebSockets. Any other Origin is refused with 403.
	// Requests without Origin (not from a browser) are allowed.
	AllowedOrigins []string
	// MaxPending and MaxPendingPerAddress bound the sessions that have
	// joined no namespace yet, in total and per client address; a
	// handshake over either is refused (503 or 429) before it costs
	// anything. Defaults: DefaultMaxPending, DefaultMaxPendingPerAddress.
	MaxPending, MaxPendingPerAddress int
	// ClientAddress names the client of a request for the per-address
	// bound; nil = RemoteHost (the TCP peer).
	ClientAddress func(r *http.Request) string
}

// Server is an Engine.IO v4 / Socket.IO v5 server. Mount it with
// mux.Handle(opts.Path, srv). Callbacks (Authorize, OnConnect, event
// handlers, OnDisconnect, ack callbacks) run on the connection's own
// goroutine, in order, and must not block for long.
type Server struct {
	opts Options
	log  *slog.Logger

	ctx    context.Context // cancelled by Close: connections shut down
	cancel context.CancelFunc
	hard   context.Context // cancelled when Close's deadline passes: no more flushing
	abort  context.CancelFunc

	nextConn atomic.Uint64 // numbers connections in logs (session ids are secret)

	mu            sync.Mutex
	closed        bool
	conns         map[string]*conn // by engine session id
	pending       int              // sessions in conns that joined no namespace yet
	pendingByAddr map[string]int   // the same, by client address
	wg            sync.WaitGroup   // connection loops and in-flight requests
}

// NewServer returns a server with opts, defaults filled in.
func NewServer(opts Options) *Server {
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	opts.Path = "/" + strings.Trim(opts.Path, "/") + "/"
	opts.PingInterval = orDefault(opts.PingInterval, DefaultPingInterval)
	opts.PingTimeout = orDefault(opts.PingTimeout, DefaultPingTimeout)
	opts.ConnectTimeout = orDefault(opts.ConnectTimeout, DefaultConnectTimeout)
	opts.MaxPayload = orDefault(opts.MaxPayload, DefaultMaxPayload)
	opts.MaxPending = orDefault(opts.MaxPending, DefaultMaxPending)
	opts.MaxPendingPerAddress = orDefault(opts.MaxPendingPerAddress, DefaultMaxPendingPerAddress)
	if opts.ClientAddress == nil {
		opts.ClientAddress = RemoteHost
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, conns: make(map[string]*conn), pendingByAddr: make(map[string]int)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hard, s.abort = context.WithCancel(context.Background())
	return s
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ServeHTTP answers Engine.IO requests: polling GET/POST and WebSocket.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.opts.Path && r.URL.Path != strings.TrimSuffix(s.opts.Path, "/") {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodOptions {
		s.preflight(w, r)
		return
	}
	switch ok, cors := s.originAllowed(r); {
	case !ok:
		writeEngineError(w, errOrigin)
		return
	case cors:
		setCORS(w.Header(), r.Header.Get("Origin"))
	}
	if !s.track() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()

	q := r.URL.Query()
	transport := q.Get("transport")
	switch {
	case transport != "polling" && transport != "websocket":
		writeEngineError(w, errUnknownTransport)
	case q.Get("EIO") != "4":
		writeEngineError(w, errUnsupportedProtocol)
	case transport == "polling":
		s.servePolling(w, r, q.Get("sid"))
	default:
		s.serveWebSocket(w, r, q.Get("sid"))
	}
}

// track registers an in-flight request so Close waits for it; false once
// the server is closing.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close shuts every connection down (clients see a transport close and
// reconnect, possibly to another instance: no Socket.IO DISCONNECT is
// sent), calls the OnDisconnect handlers with reason "server shutting
// down", and waits for every goroutine. Queued packets are flushed first;
// if ctx ends before that is done, Close stops flushing, aborts the
// WebSocket writes and returns ctx.Err() once the goroutines are gone (a
// WebSocket close handshake still takes up to 5 s with a peer that does
// not answer it).
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := ctx.Err()
	if err != nil {
		s.abort() // no time to flush anything
	}
	s.cancel()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.abort()
		<-done // transports now stop at once; writes are bounded by PingTimeout
		err = ctx.Err()
	}
	s.abort() // releases the context
	return err
}

// lookup returns the live connection with session id sid, or nil.
func (s *Server) lookup(sid string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[sid]
}

// engineError is an Engine.IO error answer, in socket.io's JSON shape.
type engineError struct {
	status  int
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// The Engine.IO error codes, as socket.io numbers them.
var (
	errUnknownTransport    = engineError{http.StatusBadRequest, 0, "Transport unknown"}
	errUnknownSID          = engineError{http.StatusBadRequest, 1, "Session ID unknown"}
	errBadHandshakeMethod  = engineError{http.StatusBadRequest, 2, "Bad handshake method"}
	errBadRequest          = engineError{http.StatusBadRequest, 3, "Bad request"}
	errUnsupportedProtocol = engineError{http.StatusBadRequest, 5, "Unsupported protocol version"}
)

func writeEngineError(w http.ResponseWriter, e engineError) {
	body, _ := json.Marshal(e) // two plain fields: cannot fail
	w.Header().Set("Content-Type", "application/json")
	if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}
