package relay

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
)

// Counters are the relay's metrics; main registers them with Prometheus.
type Counters struct {
	Allocations       atomic.Int64  // live allocations
	AllocationsTotal  atomic.Uint64 // allocations made
	BytesToPeers      atomic.Uint64 // bytes the relay sockets sent to peers
	BytesFromPeers    atomic.Uint64 // bytes the relay sockets received from permitted peers
	AuthFailures      atomic.Uint64 // requests refused for their credential
	PermissionsDenied atomic.Uint64 // permissions and channels refused (403): private, loopback… peers
	QuotaRefused      atomic.Uint64 // allocations refused (486) by the per-peer or per-session cap
	Revoked           atomic.Uint64 // allocations closed because their peer left the roster or lived too long
}

// allocations tracks the live relay sockets by peer, for the quotas and
// the sweep.
type allocations struct {
	mu        sync.Mutex
	conns     map[*relayConn]struct{}
	perPeer   map[Peer]int
	perSesion map[int64]int
}

func (a *allocations) init() {
	a.conns = map[*relayConn]struct{}{}
	a.perPeer = map[Peer]int{}
	a.perSesion = map[int64]int{}
}

// room reports whether p may have one more allocation.
func (a *allocations) room(p Peer, perPeer, perSession int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.perPeer[p] < perPeer && a.perSesion[p.Session] < perSession
}

func (a *allocations) add(c *relayConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conns[c] = struct{}{}
	a.perPeer[c.peer]++
	a.perSesion[c.peer.Session]++
}

func (a *allocations) remove(c *relayConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.conns[c]; !ok {
		return
	}
	delete(a.conns, c)
	if a.perPeer[c.peer]--; a.perPeer[c.peer] == 0 {
		delete(a.perPeer, c.peer)
	}
	if a.perSesion[c.peer.Session]--; a.perSesion[c.peer.Session] == 0 {
		delete(a.perSesion, c.peer.Session)
	}
}

// expired lists the sockets to close: their peer is no longer admitted,
// or they are older than maxLife. The roster is asked once per peer.
func (a *allocations) expired(now time.Time, maxLife time.Duration, r Roster) []*relayConn {
	a.mu.Lock()
	peers := make(map[Peer]bool, len(a.perPeer))
	for p := range a.perPeer {
		peers[p] = false
	}
	conns := make([]*relayConn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for p := range peers { // outside the lock: the roster has locks of its own
		peers[p] = r.Admitted(p)
	}
	var out []*relayConn
	for _, c := range conns {
		if !peers[c.peer] || now.Sub(c.created) > maxLife {
			out = append(out, c)
		}
	}
	return out
}

func (a *allocations) closeAll() {
	a.mu.Lock()
	conns := make([]*relayConn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// relayConn is one allocation's relay socket. It counts bytes, keeps
// packets to the relay's own address to live relay sockets (the
// permission check sees only IP addresses), and leaves the tracking set
// when closed.
type relayConn struct {
	net.PacketConn
	s       *Server
	peer    Peer
	created time.Time
	closed  atomic.Bool

	// The in-memory path between relay sockets of this server (local.go).
	udp   *udpConn      // the socket
	port  int           // its relay port
	addr  *net.UDPAddr  // its relayed address, as receivers see it
	local chan localPkt // packets from other relay sockets of this server
	// addrPort is addr, unmapped: the key of channels bound to it (fast.go).
	addrPort netip.AddrPort
	fast     fastState
}

// ReadFrom returns the next packet for pion's reader; one from a peer
// with a channel bound goes to the client directly (fast.go).
func (c *relayConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.read(b)
		if ua, ok := addr.(*net.UDPAddr); ok && err == nil && c.toClient(unmapped(ua.AddrPort()), b[:n]) {
			c.s.fastRelayed.Add(1) // toClient counted the bytes
			continue
		}
		c.s.cfg.Counters.BytesFromPeers.Add(uint64(n))
		return n, addr, err
	}
}

func (c *relayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		if !c.s.ownPortOK(ua) {
			c.s.cfg.Counters.PermissionsDenied.Add(1)
			return len(b), nil // dropped, as a router would
		}
		if dst := c.s.localDest(ua); dst != nil && (dst.forward(c, b) || dst.push(c.addr, b)) {
			c.s.cfg.Counters.BytesToPeers.Add(uint64(len(b)))
			return len(b), nil
		}
	}
	n, err := c.PacketConn.WriteTo(b, addr)
	c.s.cfg.Counters.BytesToPeers.Add(uint64(n))
	return n, err
}

func (c *relayConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.s.ports.CompareAndDelete(c.port, c)
		c.forget()
		c.s.allocs.remove(c)
		c.s.cfg.Counters.Allocations.Add(-1)
	}
	return c.PacketConn.Close()
}

// ownPortOK: packets to the relay's own address must go to a live relay
// socket of this server, never to another service of this host (the HTTP
// API, Redis…), even one bound inside the relay port range, which often
// overlaps the kernel's ephemeral ports.
func (s *Server) ownPortOK(ua *net.UDPAddr) bool {
	a, ok := netip.AddrFromSlice(ua.IP)
	if !ok || a.Unmap() != s.policy.relay {
		return true
	}
	_, live := s.ports.Load(ua.Port)
	return live
}

// relayGen is pion's RelayAddressGenerator: UDP relay sockets in the port
// range, tracked per peer. TCP relays (RFC 6062) are not offered: browsers
// do not use them and they would widen what the relay can reach.
type relayGen Server

var errNoTCPRelay = errors.New("relay: TCP allocations (RFC 6062) are not offered")

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	s := (*Server)(g)
	p, ok := parseUserID(conf.UserID)
	if !ok {
		return nil, nil, errors.New("relay: allocation without a peer")
	}
	if (conf.Network == "udp6") != s.cfg.RelayIP.Is6() {
		return nil, nil, errors.New("relay: address family not offered")
	}
	pc, port, err := s.listenRelay(conf.Network, conf.RequestedPort)
	if err != nil {
		return nil, nil, err
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, nil, errors.New("relay: not a UDP socket")
	}
	if s.cfg.SocketBuffer > 0 {
		uc.SetReadBuffer(s.cfg.SocketBuffer)
		uc.SetWriteBuffer(s.cfg.SocketBuffer)
	}
	u := newUDPConn(uc)
	relayed := udpAddr(netip.AddrPortFrom(s.cfg.RelayIP, uint16(port)))
	c := &relayConn{PacketConn: u, s: s, peer: p, created: time.Now(),
		udp: u, port: port, addr: relayed, local: make(chan localPkt, localQueue),
		addrPort: netip.AddrPortFrom(s.cfg.RelayIP.Unmap(), uint16(port))}
	s.ports.Store(port, c)
	s.allocs.add(c)
	s.cfg.Counters.Allocations.Add(1)
	s.cfg.Counters.AllocationsTotal.Add(1)
	return c, &net.UDPAddr{IP: s.cfg.RelayIP.AsSlice(), Port: port}, nil
}

// listenRelay binds a relay socket on a random port of the range (or the
// requested one, if in range).
func (s *Server) listenRelay(network string, want int) (net.PacketConn, int, error) {
	if want != 0 {
		if want < s.cfg.PortMin || want > s.cfg.PortMax {
			return nil, 0, errors.New("relay: requested port outside the relay range")
		}
		pc, err := net.ListenPacket(network, net.JoinHostPort(s.bind, itoa(want)))
		return pc, want, err
	}
	span := s.cfg.PortMax - s.cfg.PortMin + 1
	var err error
	for range 16 {
		port := s.cfg.PortMin + rand.IntN(span)
		var pc net.PacketConn
		if pc, err = net.ListenPacket(network, net.JoinHostPort(s.bind, itoa(port))); err == nil {
			return pc, port, nil
		}
	}
	return nil, 0, err
}

func (g *relayGen) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

func (g *relayGen) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCPRelay
}
