package relay

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

// Between two relayed browsers both allocations are on this server: A's
// relay socket sends to B's relayed address, which is ours. Through the
// kernel that costs a sendto, a recvfrom and a wake-up of B's reader in
// the netpoller, half of the system calls of the whole path (the CPU
// profile of BenchmarkRelayChannelData is mostly system calls). Such a
// packet is handed to B's reader in memory instead, with the same checks:
// A's allocation checked its permission before writing, B's reader (pion)
// checks B's permission for A's relayed address as for any packet.

// Bounds of the in-memory path: a packet waits in a queue of localQueue
// per relay socket (more are dropped, as a full socket buffer would); one
// longer than localMax takes the kernel's path.
const (
	localQueue = 512
	localMax   = 2048
)

// localPkt is one packet from another relay socket of this server.
type localPkt struct {
	buf  *[]byte // from Server.pkts
	n    int
	from *net.UDPAddr // the sender's relayed address
}

// longAgo, as a read deadline, wakes a blocked reader at once.
var longAgo = time.Unix(1, 0)

// localDest is the live relay socket ua names, if it is one of ours.
func (s *Server) localDest(ua *net.UDPAddr) *relayConn {
	a, ok := netip.AddrFromSlice(ua.IP)
	if !ok || a.Unmap() != s.policy.relay {
		return nil
	}
	v, ok := s.ports.Load(ua.Port)
	if !ok {
		return nil
	}
	return v.(*relayConn)
}

// push queues b from the relay socket from for c's reader and wakes it;
// false if b is too long for the in-memory path.
func (c *relayConn) push(from *net.UDPAddr, b []byte) bool {
	if len(b) > localMax {
		return false
	}
	p := c.s.pkts.Get().(*[]byte)
	n := copy(*p, b)
	select {
	case c.local <- localPkt{buf: p, n: n, from: from}:
		c.udp.SetReadDeadline(longAgo) // after queueing: see readLocal
	default:
		c.s.pkts.Put(p) // dropped: the reader is that far behind
	}
	return true
}

// read returns the next packet, from the in-memory queue or the socket.
// A packet queued while the reader is blocked in the socket wakes it with
// a read deadline in the past; the reader clears the deadline before it
// looks at the queue again, so no packet waits for the next datagram.
func (c *relayConn) read(b []byte) (int, net.Addr, error) {
	for {
		select {
		case p := <-c.local:
			n := copy(b, (*p.buf)[:p.n])
			c.s.pkts.Put(p.buf)
			return n, p.from, nil
		default:
		}
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.closed.Load() {
			c.udp.SetReadDeadline(time.Time{})
			continue
		}
		return n, addr, err
	}
}
