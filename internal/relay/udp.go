package relay

import (
	"net"
	"net/netip"
)

// maxCachedAddrs bounds an addrCache: a flood from many source addresses
// only empties it (each packet then allocates, as without the cache).
const maxCachedAddrs = 256

// addrCache hands out one *net.UDPAddr per source address, so that reading
// a datagram allocates nothing: net.UDPConn.ReadFrom allocates an address
// and its IP slice per packet, which pion/turn needs as a net.Addr (two of
// them per relayed packet, on the client side and on the peer side). The
// addresses handed out are never modified (pion keeps them in five-tuples
// and compares them by value). Not safe for concurrent use: each socket
// has one reader (pion's read loop for it).
type addrCache map[netip.AddrPort]*net.UDPAddr

func (c addrCache) get(ap netip.AddrPort) *net.UDPAddr {
	if a, ok := c[ap]; ok {
		return a
	}
	if len(c) >= maxCachedAddrs {
		clear(c)
	}
	a := udpAddr(ap)
	c[ap] = a
	return a
}

// udpAddr is ap with its IP in the 16-byte form, which pion's five-tuple
// fingerprints convert to (net.IP.To16) on every packet: a 4-byte IP would
// cost an allocation each time.
func udpAddr(ap netip.AddrPort) *net.UDPAddr {
	ip := ap.Addr().As16()
	return &net.UDPAddr{IP: ip[:], Port: int(ap.Port()), Zone: ap.Addr().Zone()}
}

// udpConn is a UDP socket pion/turn serves (the TURN port's, or an
// allocation's relay socket) whose reads do not allocate.
type udpConn struct {
	*net.UDPConn
	addrs addrCache
	local net.Addr // LocalAddr in the 16-byte form (pion fingerprints it per packet)
}

func newUDPConn(c *net.UDPConn) *udpConn {
	u := &udpConn{UDPConn: c, addrs: addrCache{}, local: c.LocalAddr()}
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
		u.local = udpAddr(la.AddrPort())
	}
	return u
}

func (c *udpConn) LocalAddr() net.Addr { return c.local }

func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.UDPConn.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, c.addrs.get(ap), nil
}
