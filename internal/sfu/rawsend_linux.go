//go:build linux

package sfu

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// rawSender is one ownWriter's sendto on the SFU's UDP socket, as a raw
// system call (internal/relay/rawio.go explains why: net.UDPConn's write
// enters the scheduler's syscall state, and the first one after an idle
// spell wakes sysmon). sendto on the non-blocking socket never blocks, so
// it may skip that state; waiting for room stays the netpoller's
// (syscall.RawConn), which also keeps the descriptor from being closed and
// reused under the call. Used under its downTrack's lock: the state is its
// own, nothing is allocated per packet.
type rawSender struct {
	rc    syscall.RawConn
	v6    bool
	fn    func(fd uintptr) bool // made once: a closure per write would allocate
	b     []byte
	to    netip.AddrPort // what sa holds
	sa    syscall.RawSockaddrInet6
	salen uintptr
	err   syscall.Errno
}

// socketV6 reports whether uc is an AF_INET6 socket.
func socketV6(uc *net.UDPConn) (bool, error) {
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

func newRawSender(uc *net.UDPConn, v6 bool) (*rawSender, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &rawSender{rc: rc, v6: v6}
	s.fn = s.sendto
	return s, nil
}

func (s *rawSender) sendto(fd uintptr) bool {
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

// send writes b to to.
func (s *rawSender) send(b []byte, to netip.AddrPort) (int, error) {
	if to != s.to || s.salen == 0 {
		if !s.setAddr(to) {
			return 0, errPathLost
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

func (s *rawSender) setAddr(to netip.AddrPort) bool {
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
		if a.Zone() != "" { // pairAddr never gives one
			return false
		}
		s.sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Port: *(*uint16)(unsafe.Pointer(&port)), Addr: a.As16()}
		s.salen = syscall.SizeofSockaddrInet6
	}
	s.to = to
	return true
}
