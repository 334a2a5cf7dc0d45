//go:build linux

package rawudp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// IsV6 reports whether uc is an AF_INET6 socket (dual-stack ones too).
func IsV6(uc *net.UDPConn) (bool, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false, err
	}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		domain, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	}); err != nil {
		return false, err
	}
	return domain == syscall.AF_INET6, serr
}

// DontFragment sets the Don't Fragment bit on every datagram uc sends
// (IP_PMTUDISC_DO, and IPV6_PMTUDISC_DO on an AF_INET6 socket), as
// Chromium does on its WebRTC sockets. Besides never fragmenting (media
// datagrams stay under about 1,200 bytes; a larger one than the path's
// known MTU fails with EMSGSIZE), it spares the kernel a hashed IP ID per
// datagram: under the default IP_PMTUDISC_WANT an unconnected UDP socket's
// datagrams may be fragmented, so each gets an ID from the shared,
// hashed ID table (__ip_select_ident, 5 % of the SFU's CPU at 1 × 100),
// where DF datagrams get 0.
func DontFragment(uc *net.UDPConn) error {
	v6, err := IsV6(uc)
	if err != nil {
		return err
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO)
		if serr == nil && v6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MTU_DISCOVER, syscall.IPV6_PMTUDISC_DO)
		}
	}); err != nil {
		return err
	}
	return serr
}

// Reader reads datagrams for one reader at a time.
type Reader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // made once: a closure per read would allocate
	buf []byte
	sa  syscall.RawSockaddrAny
	n   int
	err syscall.Errno
}

// NewReader prepares raw reads on uc.
func NewReader(uc *net.UDPConn) (*Reader, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &Reader{rc: rc}
	r.fn = r.recv
	return r, nil
}

func (r *Reader) recv(fd uintptr) bool {
	for {
		salen := uint32(syscall.SizeofSockaddrAny)
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))),
			uintptr(len(r.buf)), 0, uintptr(unsafe.Pointer(&r.sa)), uintptr(unsafe.Pointer(&salen)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the netpoller waits for the next datagram (and honours the read deadline)
		}
		r.n, r.err = int(n), e
		return true
	}
}

// Read reads one datagram into b, which must not be empty.
func (r *Reader) Read(b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return 0, netip.AddrPort{}, errors.New("rawudp: empty read buffer")
	}
	r.buf = b
	err := r.rc.Read(r.fn)
	r.buf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err // closed, or the deadline: as net.UDPConn's error
	}
	if r.err != 0 {
		return 0, netip.AddrPort{}, r.err
	}
	return r.n, sockaddrAddrPort(&r.sa), nil
}

// sockaddrAddrPort decodes a sender's address.
func sockaddrAddrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port)
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		a := netip.AddrFrom16(p.Addr)
		if p.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(p.Scope_id), 10)) // the net package takes numeric zones
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

// Sender is one writer's sendto state: used by one goroutine at a time
// (Senders pools them for many), it allocates nothing per datagram and
// keeps the last destination encoded.
type Sender struct {
	rc    syscall.RawConn
	v6    bool
	fn    func(fd uintptr) bool // made once: a closure per write would allocate
	b     []byte
	to    netip.AddrPort           // what sa holds
	sa    syscall.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	salen uintptr
	err   syscall.Errno
}

// NewSender prepares raw writes on uc, an AF_INET6 socket if v6 (IsV6).
func NewSender(uc *net.UDPConn, v6 bool) (*Sender, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &Sender{rc: rc, v6: v6}
	s.fn = s.sendto
	return s, nil
}

func (s *Sender) sendto(fd uintptr) bool {
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(s.b))),
			uintptr(len(s.b)), 0, uintptr(unsafe.Pointer(&s.sa)), s.salen)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the netpoller waits until the socket takes it, as net.UDPConn would
		}
		s.err = e
		return true
	}
}

// Send writes b to to; ErrUnsupportedAddr if the socket's family cannot
// carry it.
func (s *Sender) Send(b []byte, to netip.AddrPort) (int, error) {
	if to != s.to || s.salen == 0 {
		if !s.setAddr(to) {
			return 0, ErrUnsupportedAddr
		}
	}
	s.b, s.err = b, 0
	err := s.rc.Write(s.fn)
	s.b = nil
	if err != nil {
		return 0, err
	}
	if s.err != 0 {
		return 0, s.err
	}
	return len(b), nil
}

func (s *Sender) setAddr(to netip.AddrPort) bool {
	a := to.Addr()
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], to.Port())
	if !s.v6 {
		if a = a.Unmap(); !a.Is4() {
			return false
		}
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&s.sa))
		*sa = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Port: *(*uint16)(unsafe.Pointer(&port)), Addr: a.As4()}
		s.salen = syscall.SizeofSockaddrInet4
	} else {
		s.sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Port: *(*uint16)(unsafe.Pointer(&port)), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if i, err := strconv.ParseUint(z, 10, 32); err == nil {
				s.sa.Scope_id = uint32(i)
			} else if ifi, err := net.InterfaceByName(z); err == nil {
				s.sa.Scope_id = uint32(ifi.Index)
			}
		}
		s.salen = syscall.SizeofSockaddrInet6
	}
	s.to = to
	return true
}
