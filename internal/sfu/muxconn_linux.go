//go:build linux

package sfu

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// MuxConn wraps the SFU's UDP socket for pion's ICE UDP mux
// (webrtc.NewICEUDPMux(nil, MuxConn(uc))): its datagram reads and writes
// are raw system calls, as the downTracks' own writes are (rawSender).
// Why: in a process otherwise idle between packets, the first
// net.UDPConn call after each wake-up enters the scheduler's syscall
// state, which wakes sysmon, which then polls every 20 µs for a while: in
// the server's profile at 1 × 100, sysmon's sleeps were 14 % of its CPU
// once the downTracks' writes were raw and the mux's reads were not. The
// socket's other methods (Close, deadlines, addresses) are its own.
func MuxConn(uc *net.UDPConn) net.PacketConn {
	v6, err := socketV6(uc)
	if err != nil {
		return uc
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return uc
	}
	c := &muxConn{UDPConn: uc, rc: rc, v6: v6}
	c.fn = c.recv
	c.senders.New = func() any {
		s, _ := newRawSender(uc, v6) // SyscallConn worked above: no error here
		return s
	}
	return c
}

type muxConn struct {
	*net.UDPConn
	rc      syscall.RawConn
	v6      bool
	senders sync.Pool // *rawSender: writers are many goroutines

	rmu sync.Mutex // one reader in practice (the mux's); the lock keeps a second one safe
	fn  func(fd uintptr) bool
	buf []byte
	sa  syscall.RawSockaddrAny
	n   int
	err syscall.Errno
}

func (c *muxConn) recv(fd uintptr) bool {
	for {
		salen := uint32(syscall.SizeofSockaddrAny)
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.buf))),
			uintptr(len(c.buf)), 0, uintptr(unsafe.Pointer(&c.sa)), uintptr(unsafe.Pointer(&salen)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the netpoller waits for the next datagram (and honours the read deadline)
		}
		c.n, c.err = int(n), e
		return true
	}
}

// ReadFromAddrPort is pion's ice.AddrPortReaderWriter.
func (c *muxConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return c.UDPConn.ReadFromUDPAddrPort(b)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.buf = b
	err := c.rc.Read(c.fn)
	c.buf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err // closed, or the deadline: as net.UDPConn's error
	}
	if c.err != 0 {
		return 0, netip.AddrPort{}, c.err
	}
	return c.n, sockaddrAddrPort(&c.sa), nil
}

// WriteToAddrPort is pion's ice.AddrPortReaderWriter.
func (c *muxConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	s := c.senders.Get().(*rawSender)
	defer c.senders.Put(s)
	n, err := s.send(b, to)
	if err == errPathLost { // an address of the other family: let the net package say why
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

// sockaddrAddrPort decodes a sender's address.
func sockaddrAddrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), uint16(port[0])<<8|uint16(port[1]))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		a := netip.AddrFrom16(p.Addr)
		if p.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(p.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, uint16(port[0])<<8|uint16(port[1]))
	}
	return netip.AddrPort{}
}
