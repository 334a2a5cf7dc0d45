//go:build linux

package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/rawudp"
)

// MuxConn wraps the SFU's UDP socket for pion's ICE UDP mux
// (webrtc.NewICEUDPMux(nil, MuxConn(uc))): its datagram reads and writes
// are raw system calls (package rawudp), as the downTracks' own writes
// are. Why: in a process otherwise idle between packets, the first
// net.UDPConn call after each wake-up enters the scheduler's syscall
// state, which wakes sysmon, which then polls every 20 µs for a while: in
// the server's profile at 1 × 100, sysmon's sleeps were 14 % of its CPU
// once the downTracks' writes were raw and the mux's reads were not. The
// socket's other methods (Close, deadlines, addresses) are its own.
func MuxConn(uc *net.UDPConn) net.PacketConn { return MuxConnWith(uc, nil) }

// MuxConnWith is MuxConn whose reads go through tap first (srtpread.go):
// the datagrams it takes never reach pion. A nil tap takes nothing.
func MuxConnWith(uc *net.UDPConn, tap *ReadTap) net.PacketConn {
	r, err := rawudp.NewReader(uc)
	if err != nil {
		return uc
	}
	w, err := rawudp.NewSenders(uc)
	if err != nil {
		return uc
	}
	c := &muxConn{UDPConn: uc, r: r, w: w}
	if tap != nil && tap.attach(uc) == nil {
		c.tap = tap
	}
	return c
}

type muxConn struct {
	*net.UDPConn
	w   *rawudp.Senders // writers are many goroutines
	rmu sync.Mutex      // one reader in practice (the mux's); the lock keeps a second one safe
	r   *rawudp.Reader
	tap *ReadTap // nil: every datagram is pion's
}

// ReadFromAddrPort is pion's ice.AddrPortReaderWriter.
func (c *muxConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return c.UDPConn.ReadFromUDPAddrPort(b)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		n, from, err := c.r.Read(b)
		if err != nil || c.tap == nil || !c.tap.take(b[:n], from) {
			return n, from, err
		}
	}
}

// WriteToAddrPort is pion's ice.AddrPortReaderWriter.
func (c *muxConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	n, err := c.w.Send(b, to)
	if errors.Is(err, rawudp.ErrUnsupportedAddr) { // an address of the other family: let the net package say why
		return c.UDPConn.WriteToUDPAddrPort(b, to)
	}
	return n, err
}

func (c *muxConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(a), nil
}

func (c *muxConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr)
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}
