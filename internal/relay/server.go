package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/reuseport"
	"github.com/pion/turn/v5"
)

// Roster says whether a peer is admitted to its session right now. The
// session Manager answers it from its live state; it must be fast and safe
// for concurrent use (it is asked for every authenticated TURN request and,
// per live allocation, every sweep).
type Roster interface {
	Admitted(p Peer) bool
}

// Config configures a [Server]. Zero values get the defaults named on each
// field.
type Config struct {
	Listen    string     // host:port of TURN/UDP and TURN/TCP; port 0 picks a free one for both
	RelayIP   netip.Addr // the relay address browsers reach; see [RelayIP]
	RelayBind string     // local address of relay sockets; "" = RelayIP if local, else all interfaces
	PortMin   int        // relay ports [PortMin, PortMax]
	PortMax   int
	Realm     string
	Minter    *Minter // checks the credentials (required)
	Roster    Roster  // required
	Allow     []netip.Prefix
	// MaxPerPeer and MaxPerSession cap live allocations per credential
	// (one invitee) and per session; MaxLifetime caps each allocation's
	// total life (refreshes included).
	MaxPerPeer    int           // default 16
	MaxPerSession int           // default 128
	MaxLifetime   time.Duration // default 8h
	ReadLoops     int           // UDP sockets on the port (SO_REUSEPORT); 0 = runtime.NumCPU()
	SocketBuffer  int           // bytes per UDP socket; 0 = the kernel's default
	TLSListen     string        // separate TURNS listener ("" = none); needs TLS
	TLS           *tls.Config   // certificate for TLSListen
	SharedTLS     bool          // accept TLS connections handed over by [Server.ShareTLS]
	Counters      *Counters     // nil: the server keeps its own (see [Server.Counters])
	Logger        *slog.Logger  // nil discards
	// Sweep is how often allocations are checked against the Roster and
	// MaxLifetime; default 200 ms.
	Sweep time.Duration
	// FirstRead is how long a TCP or TLS connection may stay silent after
	// it is accepted; default 10 s.
	FirstRead time.Duration
}

func (c *Config) defaults() {
	if c.MaxPerPeer == 0 {
		c.MaxPerPeer = 16
	}
	if c.MaxPerSession == 0 {
		c.MaxPerSession = 128
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 8 * time.Hour
	}
	if c.ReadLoops == 0 {
		c.ReadLoops = runtime.NumCPU()
	}
	if c.Counters == nil {
		c.Counters = &Counters{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Sweep == 0 {
		c.Sweep = 200 * time.Millisecond
	}
	if c.FirstRead == 0 {
		c.FirstRead = firstRead
	}
}

// Server is a running TURN server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	policy   peerPolicy
	bind     string
	turn     *turn.Server
	udp      []net.PacketConn
	tcp      net.Listener
	tlsLn    net.Listener
	shared   *chanListener  // TLS conns from ShareTLS; nil unless cfg.SharedTLS
	sharedLn *trackListener // shared, as pion serves it
	allocs   allocations
	ports    sync.Map  // relay port → its live *relayConn, for the in-memory path (local.go)
	pkts     sync.Pool // *[]byte of localMax bytes, for the in-memory path
	// The ChannelData fast path (fast.go): UDP five-tuple → its live
	// *relayConn, and our TURN sockets by address (set before start).
	tuples      sync.Map
	socks       map[netip.AddrPort]*turnConn
	fastRelayed atomic.Uint64 // packets the fast path relayed (tests)
	muxMu       sync.Mutex
	muxes       []*tlsMux // from ShareTLS, closed by Close

	cancel context.CancelFunc
	wg     sync.WaitGroup // sweep, ShareTLS loops and their hand-shakes
}

// New starts a TURN server: it listens before it returns.
func New(cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.Minter == nil || cfg.Roster == nil {
		return nil, errors.New("relay: Minter and Roster are required")
	}
	if !cfg.RelayIP.IsValid() || cfg.PortMin < 1 || cfg.PortMax < cfg.PortMin || cfg.PortMax > 65535 {
		return nil, fmt.Errorf("relay: invalid relay address %v or port range %d-%d", cfg.RelayIP, cfg.PortMin, cfg.PortMax)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, policy: peerPolicy{relay: cfg.RelayIP.Unmap(), allow: cfg.Allow},
		bind: relayBind(cfg.RelayBind, cfg.RelayIP)}
	s.allocs.init()
	s.pkts.New = func() any { b := make([]byte, localMax); return &b }
	if err := s.listen(); err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		s.closeSockets()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.sweep(ctx) })
	return s, nil
}

// start hands the sockets to pion/turn.
func (s *Server) start() error {
	sc := turn.ServerConfig{
		Realm:        s.cfg.Realm,
		AuthHandler:  s.auth,
		QuotaHandler: s.quota,
		EventHandler: turn.EventHandler{OnAuth: s.onAuth, OnAllocationCreated: s.onAllocationCreated,
			OnChannelCreated: s.onChannelCreated, OnChannelDeleted: s.onChannelDeleted},
		LoggerFactory:      pionLogs{s.log},
		AllocationLifetime: 10 * time.Minute,
		// With an IPv4 relay, an Allocate that names no family is IPv4
		// (RFC 6156), whatever the family of the socket it came on.
		StrictAddressFamily: s.cfg.RelayIP.Is4(),
	}
	for _, c := range s.udp {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: c, RelayAddressGenerator: (*relayGen)(s), PermissionHandler: s.permit})
	}
	for _, ln := range s.listeners() {
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: ln, RelayAddressGenerator: (*relayGen)(s), PermissionHandler: s.permit})
	}
	ts, err := turn.NewServer(sc)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	s.turn = ts
	return nil
}

// listen opens the UDP sockets and the TCP listener on one port, and the
// TURNS listener if configured.
func (s *Server) listen() error {
	var err error
	for range 5 { // port 0: the UDP port picked may be taken elsewhere or on TCP
		if err = s.listenPort(); err == nil {
			break
		}
		if _, p, _ := net.SplitHostPort(s.cfg.Listen); p != "0" {
			return err
		}
	}
	if err != nil {
		return err
	}
	if s.cfg.TLSListen != "" {
		if s.cfg.TLS == nil {
			s.closeSockets()
			return errors.New("relay: TLSListen needs a certificate")
		}
		ln, err := net.Listen("tcp", s.cfg.TLSListen)
		if err != nil {
			s.closeSockets()
			return fmt.Errorf("relay: listen TURNS %s: %w", s.cfg.TLSListen, err)
		}
		s.tlsLn = track(tls.NewListener(ln, s.cfg.TLS), s.cfg.FirstRead)
	}
	if s.cfg.SharedTLS {
		s.shared = newChanListener(s.tcp.Addr())
		s.sharedLn = track(s.shared, s.cfg.FirstRead)
	}
	return nil
}

// listeners are the stream listeners pion/turn serves.
func (s *Server) listeners() []net.Listener {
	out := []net.Listener{s.tcp}
	if s.tlsLn != nil {
		out = append(out, s.tlsLn)
	}
	if s.sharedLn != nil {
		out = append(out, s.sharedLn)
	}
	return out
}

func (s *Server) listenPort() error {
	lc := net.ListenConfig{Control: reuseport.Control}
	host, port, err := net.SplitHostPort(s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("relay: listen %q: %w", s.cfg.Listen, err)
	}
	hosts, err := udpHosts(host)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		for range s.cfg.ReadLoops {
			addr := net.JoinHostPort(h, port)
			c, err := lc.ListenPacket(context.Background(), "udp", addr)
			if err != nil {
				s.closeSockets()
				return fmt.Errorf("relay: listen UDP %s: %w", addr, err)
			}
			if uc, ok := c.(*net.UDPConn); ok {
				if s.cfg.SocketBuffer > 0 {
					uc.SetReadBuffer(s.cfg.SocketBuffer) // best effort: capped by net.core.rmem_max
					uc.SetWriteBuffer(s.cfg.SocketBuffer)
				}
				if c, err = s.newTurnConn(uc); err != nil {
					uc.Close()
					s.closeSockets()
					return fmt.Errorf("relay: UDP socket %s: %w", addr, err)
				}
			}
			s.udp = append(s.udp, c)
			if port == "0" { // the others (and TCP) join the port the first one got
				port = strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
			}
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		s.closeSockets()
		return fmt.Errorf("relay: listen TCP %s: %w", net.JoinHostPort(host, port), err)
	}
	s.tcp = track(ln, s.cfg.FirstRead)
	return nil
}

// udpHosts are the addresses UDP sockets bind to. A wildcard listen
// address becomes every address of the host: a UDP socket bound to the
// wildcard answers from whatever address the route picks, and TURN
// clients drop what does not come from the address they sent to.
func udpHosts(host string) ([]string, error) {
	if a, err := netip.ParseAddr(host); host != "" && (err != nil || !a.IsUnspecified()) {
		return []string{host}, nil
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("relay: list local addresses: %w", err)
	}
	var out []string
	for _, ia := range ifaddrs {
		n, ok := ia.(*net.IPNet)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || a.IsLinkLocalUnicast() || a.IsMulticast() {
			continue
		}
		if a = a.Unmap(); host == "0.0.0.0" && !a.Is4() {
			continue
		}
		out = append(out, a.String())
	}
	if len(out) == 0 {
		return nil, errors.New("relay: this host has no address to listen on")
	}
	return out, nil
}

// newTurnConn wraps a socket of the TURN port for the fast path.
func (s *Server) newTurnConn(uc *net.UDPConn) (*turnConn, error) {
	raw, err := newRawIO(uc)
	if err != nil {
		return nil, err
	}
	u := newUDPConn(uc)
	c := &turnConn{udpConn: u, s: s, localAP: unmapped(u.local.(*net.UDPAddr).AddrPort()), raw: raw}
	if s.socks == nil {
		s.socks = map[netip.AddrPort]*turnConn{}
	}
	if s.socks[c.localAP] == nil {
		s.socks[c.localAP] = c
	}
	return c, nil
}

func (s *Server) closeSockets() {
	for _, c := range s.udp {
		c.Close()
	}
	s.udp, s.socks = nil, nil
	for _, ln := range []net.Listener{s.tcp, s.tlsLn} {
		if ln != nil {
			ln.Close()
		}
	}
	s.tcp, s.tlsLn = nil, nil
	if s.sharedLn != nil {
		s.sharedLn.Close()
	}
}

// Addr is the UDP and TCP address the server listens on.
func (s *Server) Addr() net.Addr { return s.udp[0].LocalAddr() }

// Port is the UDP and TCP port the server listens on.
func (s *Server) Port() int { return s.udp[0].LocalAddr().(*net.UDPAddr).Port }

// TLSAddr is the address of the separate TURNS listener, or nil.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Counters are the server's metrics.
func (s *Server) Counters() *Counters { return s.cfg.Counters }

// Close stops listening, closes every allocation and waits for the
// goroutines the server started.
func (s *Server) Close() error {
	s.cancel()
	s.muxMu.Lock()
	for _, m := range s.muxes {
		m.Close()
	}
	s.muxMu.Unlock()
	err := s.turn.Close() // closes the sockets and listeners; pion then closes the allocations
	s.wg.Wait()
	s.allocs.closeAll()
	return err
}

// auth checks a TURN request's credential. A new allocation needs an
// unexpired credential; requests on an existing allocation (refresh,
// permission, channel) only need the peer to be still admitted, because
// browsers keep the credentials they allocated with, and the allocation's
// life is capped by MaxLifetime anyway. The password is never compared
// here: pion checks MESSAGE-INTEGRITY with hmac.Equal.
func (s *Server) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	exp, p, ok := parseUsername(ra.Username)
	now := time.Now()
	switch {
	case !ok || ra.Realm != s.cfg.Realm:
	case ra.Method == stun.MethodAllocate && now.After(exp):
	case now.After(exp.Add(s.cfg.MaxLifetime)):
	case !s.cfg.Roster.Admitted(p):
	default:
		return p.userID(), turn.GenerateAuthKey(ra.Username, ra.Realm, s.cfg.Minter.password(ra.Username)), true
	}
	s.cfg.Counters.AuthFailures.Add(1)
	return "", nil, false
}

// onAuth counts credentials that named an admitted peer but whose
// MESSAGE-INTEGRITY was wrong (a wrong password).
func (s *Server) onAuth(_, _ net.Addr, _, _, _ string, _ string, verdict bool) {
	if !verdict {
		s.cfg.Counters.AuthFailures.Add(1)
	}
}

// quota refuses an allocation (486) beyond the per-peer and per-session caps.
func (s *Server) quota(userID, _ string, _ net.Addr) bool {
	p, ok := parseUserID(userID)
	if ok && s.allocs.room(p, s.cfg.MaxPerPeer, s.cfg.MaxPerSession) {
		return true
	}
	s.cfg.Counters.QuotaRefused.Add(1)
	return false
}

// permit is pion's PermissionHandler: CreatePermission and ChannelBind to
// a refused address get 403.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	if s.policy.allowed(peer) {
		return true
	}
	s.cfg.Counters.PermissionsDenied.Add(1)
	return false
}

// sweep closes the allocations of peers no longer admitted and those past
// MaxLifetime, every cfg.Sweep.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(s.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, c := range s.allocs.expired(now, s.cfg.MaxLifetime, s.cfg.Roster) {
				c.Close() // pion's read loop on it fails and deletes the allocation
				s.cfg.Counters.Revoked.Add(1)
			}
		}
	}
}

// RelayIP decides the relay address: relayIP when set, else the address
// hostname (WebRTC.hostname) resolves to. It fails, with a message saying
// what to set, when the hostname resolves to nothing usable or to several
// addresses of one family.
func RelayIP(ctx context.Context, relayIP, hostname string) (netip.Addr, error) {
	if relayIP != "" {
		a, err := netip.ParseAddr(relayIP)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("RehabRTC.turn.relay_ip: %w", err)
		}
		return a.Unmap(), nil
	}
	if a, err := netip.ParseAddr(hostname); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", hostname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("TURN relay address: WebRTC.hostname %q does not resolve (%v); set RehabRTC.turn.relay_ip", hostname, err)
	}
	var v4 []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		}
	}
	switch {
	case len(v4) == 1:
		return v4[0], nil
	case len(v4) == 0 && len(addrs) == 1:
		return addrs[0], nil
	}
	return netip.Addr{}, fmt.Errorf("TURN relay address: WebRTC.hostname %q resolves to %v, which one is this host's is not decidable; set RehabRTC.turn.relay_ip", hostname, addrs)
}

// relayBind is the address relay sockets bind to.
func relayBind(bind string, relay netip.Addr) string {
	if bind != "" {
		return bind
	}
	if ifaddrs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range ifaddrs {
			if n, ok := ia.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == relay.Unmap() {
					return relay.String()
				}
			}
		}
	}
	if relay.Is6() {
		return "::"
	}
	return "0.0.0.0"
}

// itoa is strconv.Itoa, short.
func itoa(n int) string { return strconv.Itoa(n) }
