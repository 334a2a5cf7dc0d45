package sfu

// Socket arrival times of BenchmarkSession's subscribers' RTP (its "at
// the socket" latency), and the publishers' sendto times; the same code as
// the load generator's bench/internal/loadgen/sockstamp.go (another
// module), on the wall clock. Each client connection keeps its own UDP
// socket (the server's ICE mux tells connections apart by the client's
// address); stampConn wraps it, asks the kernel for every datagram's
// receive time (SO_TIMESTAMPNS) and files it by the SRTP packet's clear
// header (SSRC, sequence number). When the decrypted packet reaches the
// client's reader, arrival − the publisher's sendto (filed by the
// publisher's socket) is what the server added, without the clients' own
// receive path (ICE, DTLS and SRTP demultiplexing, decryption, packetio
// buffers and four goroutine hops, all on the clients' one core).

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

const arrivalRing = 1024 // packets remembered per SSRC (8 s of a camera)

// arrivals files packet times by SSRC and sequence number: the socket's
// receive times of a subscriber's packets, or the sendto times of every
// publisher's (one table per run). Lock-free on the hot path: a ring per
// SSRC, whose slots hold time<<16 | seq; any number of writers of distinct
// SSRCs and of readers.
type arrivals struct {
	base  int64    // wall-clock ns: times are filed relative to it (48 bits)
	rings sync.Map // uint32 SSRC → *[arrivalRing]atomic.Uint64
}

func newArrivals() *arrivals { return &arrivals{base: time.Now().UnixNano()} }

// put files t (wall-clock ns, after base) for one RTP packet.
func (a *arrivals) put(ssrc uint32, seq uint16, t int64) {
	if t -= a.base; t <= 0 {
		return
	}
	r, ok := a.rings.Load(ssrc)
	if !ok {
		r, _ = a.rings.LoadOrStore(ssrc, new([arrivalRing]atomic.Uint64))
	}
	r.(*[arrivalRing]atomic.Uint64)[seq%arrivalRing].Store(uint64(t)<<16 | uint64(seq))
}

// get returns the time filed for (ssrc, seq), if any.
func (a *arrivals) get(ssrc uint32, seq uint16) (int64, bool) {
	r, ok := a.rings.Load(ssrc)
	if !ok {
		return 0, false
	}
	v := r.(*[arrivalRing]atomic.Uint64)[seq%arrivalRing].Load()
	if v == 0 || uint16(v) != seq {
		return 0, false
	}
	return int64(v>>16) + a.base, true
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

// stampConn is a client's UDP socket that files RTP arrival times, and
// the time just before each RTP sendto in sent (the publishers' send
// times, one table for the run). pion's ICE reads it through
// ReadFromAddrPort from one goroutine (the host candidate's reader), so
// oob is that reader's.
type stampConn struct {
	*net.UDPConn
	arr    *arrivals
	sent   *arrivals
	kernel bool // SO_TIMESTAMPNS is on: arrival is the kernel's receive time
	oob    [64]byte
}

func newStampConn(c *net.UDPConn, sent *arrivals) *stampConn {
	s := &stampConn{UDPConn: c, arr: newArrivals(), sent: sent}
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
	if ssrc, seq, ok := rtpKey(b); ok && t > 0 {
		s.arr.put(ssrc, seq, t)
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

// WriteToAddrPort sends one datagram and, for RTP, files the time just
// before the sendto: the publisher's send time, closer to the wire than
// the stamp in the payload (taken before pion's write chain and SRTP
// encryption, on the tool's busy core).
func (s *stampConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if ssrc, seq, ok := rtpKey(b); ok && s.sent != nil {
		s.sent.put(ssrc, seq, time.Now().UnixNano())
	}
	return s.UDPConn.WriteToUDPAddrPort(b, addr)
}

// WriteTo is WriteToAddrPort for callers of net.PacketConn.
func (s *stampConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return s.UDPConn.WriteTo(b, addr)
	}
	return s.WriteToAddrPort(b, ua.AddrPort())
}

// stampSockets registers every client socket by local port, so that a
// reader finds its connection's arrivals from the selected candidate.
type stampSockets struct {
	sent   *arrivals // every socket's RTP sendto times (may be shared)
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
	return s.arr.arrivalOf(pkt)
}

// stampNet is pion's standard network whose UDP sockets are stampConns,
// registered in socks, with 1 MB receive buffers as the load generator's.
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
	sc := newStampConn(uc, n.socks.sent)
	n.socks.add(sc)
	return sc, nil
}
