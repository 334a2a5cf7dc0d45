package relay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// The ChannelData fast path. Media between relayed browsers is ChannelData
// (browsers bind a channel per peer). pion/turn's path for one packet of it
// costs, on top of the system calls: a five-tuple fingerprint and a map
// lookup under the allocation manager's lock, a Debugf whose arguments are
// built (SrcAddr.String()) although the logger drops them, a linear channel
// search on each side, a fresh ChannelData buffer per packet, and, between
// two allocations of this server, a second goroutine (B's relay socket
// reader) woken for every packet.
//
// So the TURN port's UDP sockets relay ChannelData themselves when they
// can, and hand pion everything else. The decisions are pion's own, taken
// from state pion reports through its EventHandler (allocation created,
// channel created or deleted), and the sockets' closed flags:
//
//   - A's packet is relayed only if A's allocation (its five-tuple: client
//     address, our socket's address) is live and has that channel number
//     bound; it goes to the peer the channel names, through A's relay
//     socket's WriteTo (relayConn), which keeps the own-port check and the
//     in-memory path.
//   - Between two allocations of this server, B's client gets it as
//     ChannelData only if B's allocation is live, reached over UDP, and has
//     a channel bound to A's relayed address — what pion's reader on B's
//     relay socket checks first. Otherwise (B has only a permission, or
//     nothing, or its client is on TCP) the packet takes the in-memory queue
//     to pion's reader, which checks B's permission as before.
//
// A channel binding pion removes (expiry, allocation closed) is removed here
// by the event; a socket closed by the roster sweep or by pion stops the
// fast path at once (closed flag), before any event. What cannot be missed
// is a deletion: a binding missed here only sends its packets through pion.

// tupleKey is a UDP five-tuple (the protocol is implied): the client's
// address and the address of our socket it talks to, both unmapped.
type tupleKey struct{ client, local netip.AddrPort }

// chanTable is one allocation's channel bindings as pion reported them.
// It is never modified: a change stores a new table (relayConn.chans).
type chanTable struct {
	client netip.AddrPort // the allocation's UDP client
	local  netip.AddrPort // our TURN socket's address for it
	byNum  map[uint16]chanPeer
	byPeer map[netip.AddrPort]uint16
}

type chanPeer struct {
	addr *net.UDPAddr // for relayConn.WriteTo
	ap   netip.AddrPort
}

func (t *chanTable) with(num uint16, peer *net.UDPAddr) *chanTable {
	n := &chanTable{client: t.client, local: t.local,
		byNum: make(map[uint16]chanPeer, len(t.byNum)+1), byPeer: make(map[netip.AddrPort]uint16, len(t.byPeer)+1)}
	for k, v := range t.byNum {
		n.byNum[k] = v
	}
	for k, v := range t.byPeer {
		n.byPeer[k] = v
	}
	ap := unmapped(peer.AddrPort())
	n.byNum[num] = chanPeer{addr: udpAddr(ap), ap: ap}
	n.byPeer[ap] = num
	return n
}

func (t *chanTable) without(num uint16) *chanTable {
	n := &chanTable{client: t.client, local: t.local,
		byNum: make(map[uint16]chanPeer, len(t.byNum)), byPeer: make(map[netip.AddrPort]uint16, len(t.byPeer))}
	for k, v := range t.byNum {
		if k != num {
			n.byNum[k] = v
			n.byPeer[v.ap] = k
		}
	}
	return n
}

// fastState is the relay socket's share of the fast path.
type fastState struct {
	mu    sync.Mutex // serialises table changes and tuple
	tuple tupleKey   // set once, when pion reports the allocation
	chans atomic.Pointer[chanTable]
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// udpTuple is the five-tuple of a UDP client; false for TCP and TLS ones.
func udpTuple(src, dst net.Addr) (tupleKey, bool) {
	s, ok1 := src.(*net.UDPAddr)
	d, ok2 := dst.(*net.UDPAddr)
	if !ok1 || !ok2 {
		return tupleKey{}, false
	}
	return tupleKey{client: unmapped(s.AddrPort()), local: unmapped(d.AddrPort())}, true
}

// onAllocationCreated starts the channel table of a UDP client's
// allocation (pion's EventHandler).
func (s *Server) onAllocationCreated(src, dst net.Addr, _, _, _ string, relayAddr net.Addr, _ int) {
	k, ok := udpTuple(src, dst)
	ra, ok2 := relayAddr.(*net.UDPAddr)
	if !ok || !ok2 || s.socks[k.local] == nil {
		return
	}
	v, ok := s.ports.Load(ra.Port) // stored by AllocatePacketConn just before
	if !ok {
		return
	}
	c := v.(*relayConn)
	c.fast.mu.Lock()
	c.fast.tuple = k
	c.fast.chans.Store(&chanTable{client: k.client, local: k.local})
	c.fast.mu.Unlock()
	s.tuples.Store(k, c)
	if c.closed.Load() { // closed meanwhile: Close may have missed the entry
		s.tuples.CompareAndDelete(k, c)
	}
}

func (s *Server) tupleConn(src, dst net.Addr, relayAddr net.Addr) *relayConn {
	k, ok := udpTuple(src, dst)
	if !ok {
		return nil
	}
	v, ok := s.tuples.Load(k)
	if !ok {
		return nil
	}
	c := v.(*relayConn)
	if ra, ok := relayAddr.(*net.UDPAddr); !ok || ra.Port != c.port {
		return nil
	}
	return c
}

// onChannelCreated and onChannelDeleted mirror pion's channel bindings.
// pion calls them under the allocation's channel lock, so for one
// allocation they come in order.
func (s *Server) onChannelCreated(src, dst net.Addr, _, _, _ string, relayAddr, peer net.Addr, num uint16) {
	c := s.tupleConn(src, dst, relayAddr)
	pa, ok := peer.(*net.UDPAddr)
	if c == nil || !ok {
		return
	}
	c.fast.mu.Lock()
	defer c.fast.mu.Unlock()
	if t := c.fast.chans.Load(); t != nil {
		c.fast.chans.Store(t.with(num, pa))
	}
}

func (s *Server) onChannelDeleted(src, dst net.Addr, _, _, _ string, relayAddr, _ net.Addr, num uint16) {
	c := s.tupleConn(src, dst, relayAddr)
	if c == nil {
		return
	}
	c.fast.mu.Lock()
	defer c.fast.mu.Unlock()
	if t := c.fast.chans.Load(); t != nil {
		c.fast.chans.Store(t.without(num))
	}
}

// forget drops the closed socket c from the five-tuple index.
func (c *relayConn) forget() {
	c.fast.mu.Lock()
	k := c.fast.tuple
	c.fast.chans.Store(nil)
	c.fast.mu.Unlock()
	c.s.tuples.CompareAndDelete(k, c)
}

// isChannelData checks the ChannelData header as pion does: a channel
// number in 0x4000–0x7FFF and a length that fits what was read.
func isChannelData(p []byte) (num uint16, data []byte, ok bool) {
	if len(p) < 4 {
		return 0, nil, false
	}
	num = binary.BigEndian.Uint16(p)
	l := int(binary.BigEndian.Uint16(p[2:]))
	if num < 0x4000 || num > 0x7FFF || l > len(p)-4 {
		return 0, nil, false
	}
	return num, p[4 : 4+l], true
}

// relayChannelData relays p, read on in from the client at from, if it is
// ChannelData on a live allocation's bound channel; false hands it to pion.
func (s *Server) relayChannelData(in *turnConn, from netip.AddrPort, p []byte) bool {
	num, data, ok := isChannelData(p)
	if !ok {
		return false
	}
	v, ok := s.tuples.Load(tupleKey{client: unmapped(from), local: in.localAP})
	if !ok {
		return false
	}
	a := v.(*relayConn)
	t := a.fast.chans.Load()
	if t == nil || a.closed.Load() {
		return false
	}
	peer, ok := t.byNum[num]
	if !ok {
		return false
	}
	s.fastRelayed.Add(1)
	a.WriteTo(data, peer.addr) // as pion would; it ignores the error but for a debug line
	return true
}

// forward sends data, from the relay socket from, to c's client as
// ChannelData if c's allocation has a channel bound to from's relayed
// address; false if not (pion's reader on c then decides).
func (c *relayConn) forward(from *relayConn, data []byte) bool {
	return c.toClient(from.addrPort, data)
}

// toClient sends data, which c's relay socket received from peer, to c's
// client as ChannelData if c's allocation has a channel bound to peer —
// what pion's reader checks first; false if not.
func (c *relayConn) toClient(peer netip.AddrPort, data []byte) bool {
	t := c.fast.chans.Load()
	if t == nil || c.closed.Load() || 4+len(data)+3 > localMax {
		return false
	}
	num, ok := t.byPeer[peer]
	if !ok {
		return false
	}
	sock := c.s.socks[t.local]
	if sock == nil {
		return false
	}
	// Counted before the client can have it, so that whoever sees the
	// packet arrive also sees it counted.
	c.s.cfg.Counters.BytesFromPeers.Add(uint64(len(data)))
	p := c.s.pkts.Get().(*[]byte)
	n := encodeChannelData(*p, num, data)
	sock.raw.write((*p)[:n], t.client) // an error is pion's too: its reader would only log it
	c.s.pkts.Put(p)
	return true
}

// encodeChannelData writes a ChannelData message into b, padded to 4 bytes
// like pion's, and returns its length. b holds at least 4+len(data)+3.
func encodeChannelData(b []byte, num uint16, data []byte) int {
	binary.BigEndian.PutUint16(b, num)
	binary.BigEndian.PutUint16(b[2:], uint16(len(data)))
	n := 4 + copy(b[4:], data)
	for n%4 != 0 {
		b[n] = 0
		n++
	}
	return n
}

// turnConn is a UDP socket of the TURN port: its reads relay ChannelData
// on the fast path and return the rest to pion.
type turnConn struct {
	*udpConn
	s       *Server
	localAP netip.AddrPort
	raw     rawIO // rawio.go
}

func (c *turnConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, ap, err := c.raw.read(b)
		if err != nil {
			return n, nil, err
		}
		if n < len(b) && c.s.relayChannelData(c, ap, b[:n]) { // n == len(b): maybe truncated, pion drops it
			continue
		}
		return n, c.addrs.get(ap), nil
	}
}
