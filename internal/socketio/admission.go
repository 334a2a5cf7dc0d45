package socketio

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Defaults of the admission limits.
const (
	// DefaultMaxPending bounds the Engine.IO sessions that have joined no
	// namespace yet, in total. Each holds a goroutine and two timers until
	// it joins one or ConnectTimeout ends it.
	DefaultMaxPending = 1024
	// DefaultMaxPendingPerAddress is the same bound per client address.
	DefaultMaxPendingPerAddress = 32
)

// Refusals of a new session, before any state is created.
var (
	errPendingAddr  = engineError{http.StatusTooManyRequests, 4, "Too many connections waiting to join a namespace from this address"}
	errPendingTotal = engineError{http.StatusServiceUnavailable, 4, "Too many connections waiting to join a namespace"}
	errOrigin       = engineError{http.StatusForbidden, 4, "Origin not allowed"}
)

// retryAfter is the Retry-After of a refused handshake: pending sessions
// are ended by ConnectTimeout at the latest.
const retryAfter = "5"

// RemoteHost is the default Options.ClientAddress: the IP of the TCP peer.
func RemoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// LimitKey is the key under which per-address limits count addr: the
// address itself, but an IPv6 address's /64, which one subscriber usually
// holds whole (counting each address would let one client take 2^64
// places).
func LimitKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() || a.Is4In6() {
		return addr
	}
	p, _ := a.Prefix(64) // cannot fail for IPv6
	return p.String()
}

// admitPending counts a new session as pending, or refuses it; s.mu must
// be held.
func (s *Server) admitPendingLocked(c *conn) (engineError, bool) {
	switch {
	case s.pending >= s.opts.MaxPending:
		return errPendingTotal, false
	case s.pendingByAddr[c.addr] >= s.opts.MaxPendingPerAddress:
		return errPendingAddr, false
	}
	s.pending++
	s.pendingByAddr[c.addr]++
	c.pending = true
	return engineError{}, true
}

// repend counts c as pending again, unless that is over a bound.
func (s *Server) repend(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.admitPendingLocked(c)
	return ok
}

// settle stops counting c as pending (it joined a namespace, or ended);
// safe to call more than once.
func (s *Server) settle(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.pending {
		return
	}
	c.pending = false
	s.pending--
	if n := s.pendingByAddr[c.addr] - 1; n > 0 {
		s.pendingByAddr[c.addr] = n
	} else {
		delete(s.pendingByAddr, c.addr)
	}
}

// PendingCount returns how many sessions have joined no namespace yet (for
// metrics and tests).
func (s *Server) PendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// originAllowed reports whether a request may use the server: no Origin
// (not a browser, or a same-origin GET), the server's own origin, or one of
// Options.AllowedOrigins. cors tells whether CORS headers are due.
func (s *Server) originAllowed(r *http.Request) (ok, cors bool) {
	origin := r.Header.Get("Origin")
	switch {
	case origin == "":
		return true, false
	case SameOrigin(origin, r.Host):
		return true, false
	}
	for _, o := range s.opts.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true, true
		}
	}
	return false, false
}

// SameOrigin reports whether origin ("scheme://host[:port]") names host
// (the request's Host header), the check browsers' WebSocket peers use.
func SameOrigin(origin, host string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	return ok && host != "" && strings.EqualFold(rest, host)
}

// setCORS allows the request's origin to read the answer. Credentials are
// not allowed: socket.io-client does not send cookies unless told to, and
// nothing here uses them.
func setCORS(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
}

// preflight answers an OPTIONS request: CORS for an allowed origin.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, POST, OPTIONS")
	ok, cors := s.originAllowed(r)
	if !ok {
		writeEngineError(w, errOrigin)
		return
	}
	if cors {
		setCORS(w.Header(), r.Header.Get("Origin"))
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		if h := r.Header.Get("Access-Control-Request-Headers"); h != "" {
			w.Header().Set("Access-Control-Allow-Headers", "content-type")
		}
		w.Header().Set("Access-Control-Max-Age", strconv.Itoa(600))
	}
	w.WriteHeader(http.StatusNoContent)
}

var errShuttingDown = engineError{http.StatusServiceUnavailable, 4, "Server shutting down"}

// refuseHandshake answers a handshake that opened no session. It logs at
// debug level only: a flood would otherwise flood the log too.
func (s *Server) refuseHandshake(w http.ResponseWriter, e engineError) {
	s.log.Debug("socketio: handshake refused", logKeyReason, e.Message)
	writeEngineError(w, e)
}
