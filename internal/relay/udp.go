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
	a := net.UDPAddrFromAddrPort(ap)
	c[ap] = a
	return a
}

// udpConn is a UDP socket pion/turn serves (the TURN port's, or an
// allocation's relay socket) whose reads do not allocate.
type udpConn struct {
	*net.UDPConn
	addrs addrCache
}

func newUDPConn(c *net.UDPConn) *udpConn { return &udpConn{UDPConn: c, addrs: addrCache{}} }

func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.UDPConn.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, c.addrs.get(ap), nil
}
