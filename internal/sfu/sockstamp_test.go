package sfu

// Socket arrival times of BenchmarkSession's subscribers' RTP (its "at
// the socket" latency; the same code as the load generator's
// bench/internal/loadgen/sockstamp.go, which is another module). Each client connection keeps its own UDP socket (the server's
// ICE mux tells connections apart by the client's address); stampConn
// wraps it, asks the kernel for every datagram's receive time
// (SO_TIMESTAMPNS) and files it by the SRTP packet's clear header (SSRC,
// sequence number). When the decrypted packet reaches the tool's reader,
// the reader looks its arrival up: arrival − the publisher's send stamp is
// what the server added, without the tool's own receive path (ICE, DTLS
// and SRTP demultiplexing, decryption, packetio buffers and four goroutine
// hops, all on the tool's one core).

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

const (
	arrivalSSRCs = 32   // SSRCs one connection receives (6 × 6 with audio: 10)
	arrivalRing  = 1024 // packets remembered per SSRC (8 s of a camera)
)

// arrivals files socket arrival times by SSRC and sequence number. One
// writer (the socket's reader), any number of readers (the tracks'
// readers), all lock-free: a slot holds time<<16 | seq.
type arrivals struct {
	n     atomic.Int32 // SSRCs filed so far
	ssrcs [arrivalSSRCs]atomic.Uint32
	rings [arrivalSSRCs]atomic.Pointer[[arrivalRing]atomic.Uint64]
}

// put files t (ns since the socket's base, ≥ 0) for one RTP packet; only
// the socket's reader calls it.
func (a *arrivals) put(ssrc uint32, seq uint16, t int64) {
	n := int(a.n.Load())
	for i := range n {
		if a.ssrcs[i].Load() == ssrc {
			a.rings[i].Load()[seq%arrivalRing].Store(uint64(t)<<16 | uint64(seq))
			return
		}
	}
	if n == arrivalSSRCs {
		return
	}
	r := new([arrivalRing]atomic.Uint64)
	r[seq%arrivalRing].Store(uint64(t)<<16 | uint64(seq))
	a.rings[n].Store(r)
	a.ssrcs[n].Store(ssrc)
	a.n.Store(int32(n + 1)) // published last: readers see a complete slot
}

// get returns the arrival time filed for (ssrc, seq), if any.
func (a *arrivals) get(ssrc uint32, seq uint16) (int64, bool) {
	n := int(a.n.Load())
	for i := range n {
		if a.ssrcs[i].Load() == ssrc {
			v := a.rings[i].Load()[seq%arrivalRing].Load()
			if v == 0 || uint16(v) != seq {
				return 0, false
			}
			return int64(v >> 16), true
		}
	}
	return 0, false
}

// arrivalOf looks up the socket arrival of a decrypted RTP packet.
func (a *arrivals) arrivalOf(pkt []byte) (int64, bool) {
	if a == nil || len(pkt) < 12 {
		return 0, false
	}
	return a.get(binary.BigEndian.Uint32(pkt[8:]), binary.BigEndian.Uint16(pkt[2:]))
}

// rtpKey returns the SSRC and sequence number of an SRTP datagram (RTP
// version 2, not RTCP: RFC 5761's payload types 64–95 with the marker are
// RTCP); ok is false for STUN, DTLS, RTCP.
func rtpKey(b []byte) (ssrc uint32, seq uint16, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint16(b[2:]), true
}

// stampConn is a client's UDP socket that files RTP arrival times. pion's
// ICE reads it through ReadFromAddrPort from one goroutine (the host
// candidate's reader), so oob is that reader's.
type stampConn struct {
	*net.UDPConn
	arr    arrivals
	kernel bool // SO_TIMESTAMPNS is on: arrival is the kernel's receive time
	oob    [64]byte
	base   int64 // wall-clock ns at creation: filed times are relative to it
}

func newStampConn(c *net.UDPConn) *stampConn {
	s := &stampConn{UDPConn: c, base: time.Now().UnixNano()}
	s.kernel = enableRxTimestamps(c) == nil
	return s
}

// ReadFromAddrPort reads one datagram and, for RTP, files its arrival:
// the kernel's receive time or, without it, the time the read returned.
func (s *stampConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if !s.kernel {
		n, addr, err := s.UDPConn.ReadFromUDPAddrPort(b)
		if err == nil {
			s.file(b[:n], time.Now().UnixNano())
		}
		return n, addr, err
	}
	n, oobn, _, addr, err := s.UDPConn.ReadMsgUDPAddrPort(b, s.oob[:])
	if err == nil {
		t, ok := rxTimestamp(s.oob[:oobn])
		if !ok {
			t = time.Now().UnixNano()
		}
		s.file(b[:n], t)
	}
	return n, addr, err
}

func (s *stampConn) file(b []byte, t int64) {
	if ssrc, seq, ok := rtpKey(b); ok && t > s.base {
		s.arr.put(ssrc, seq, t-s.base)
	}
}

// ReadFrom is ReadFromAddrPort for callers of net.PacketConn.
func (s *stampConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := s.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// WriteToAddrPort is the socket's own (pion uses it when the conn offers
// it, and would fall back to WriteTo's allocations otherwise).
func (s *stampConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return s.UDPConn.WriteToUDPAddrPort(b, addr)
}

// stampSockets registers every client socket by local port, so that a
// reader finds its connection's arrivals from the selected candidate.
type stampSockets struct {
	mu     sync.Mutex
	byPort map[int]*stampConn
}

func (r *stampSockets) add(c *stampConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byPort == nil {
		r.byPort = map[int]*stampConn{}
	}
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		r.byPort[a.Port] = c
	}
}

// lookup returns the socket bound to port, nil if none.
func (r *stampSockets) lookup(port int) *stampConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byPort[port]
}

// arrivalOf returns the wall-clock ns at which a decrypted RTP packet
// reached the socket, if filed.
func (s *stampConn) arrivalOf(pkt []byte) (int64, bool) {
	if s == nil {
		return 0, false
	}
	t, ok := s.arr.arrivalOf(pkt)
	return t + s.base, ok
}

// stampNet is pion's standard network whose UDP sockets are stampConns,
// registered in socks.
type stampNet struct {
	*stdnet.Net
	socks *stampSockets
}

func (n stampNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	uc, ok := c.(*net.UDPConn)
	if !ok || err != nil {
		return c, err
	}
	_ = uc.SetReadBuffer(1 << 20)
	sc := newStampConn(uc)
	n.socks.add(sc)
	return sc, nil
}
