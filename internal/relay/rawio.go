//go:build linux

package relay

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// Raw datagram I/O for the TURN port's sockets (the fast path's reads and
// writes). net.UDPConn's system calls go through the scheduler's syscall
// state (entersyscall): when the relay is idle between packets, which at
// 100 Mbit/s it is most of the time, the first one after each wake-up wakes
// sysmon, which then polls every 20 µs until the process is idle again: a
// futex wake and several context switches per burst of packets, 22 % of the
// relay's CPU in perf. recvfrom and sendto on a non-blocking socket never
// block, so they may be raw system calls, which skip that state. Waiting
// for the socket stays the netpoller's (syscall.RawConn), which also keeps
// the descriptor from being closed and reused under a call.

// errUnsupportedAddr: an address family this socket cannot carry.
var errUnsupportedAddr = errors.New("relay: unsupported address")

// rawIO is a UDP socket's raw datagram I/O: read by its one reader, write
// by any goroutine.
type rawIO struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket
	r  *rawReader
	w  *sync.Pool // *rawWrite: the socket's writers are many goroutines
}

func newRawIO(uc *net.UDPConn) (rawIO, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return rawIO{}, err
	}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		domain, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	}); err != nil {
		return rawIO{}, err
	}
	if serr != nil {
		return rawIO{}, serr
	}
	return rawIO{rc: rc, v6: domain == syscall.AF_INET6, r: newRawReader(rc), w: &sync.Pool{New: newRawWrite}}, nil
}

func (x rawIO) read(b []byte) (int, netip.AddrPort, error) { return x.r.read(b) }

// write sends b to to. A pooled rawWrite keeps it free of allocations
// (its sendto closure is made once per rawWrite).
func (x rawIO) write(b []byte, to netip.AddrPort) error {
	w := x.w.Get().(*rawWrite)
	defer x.w.Put(w)
	return w.write(x.rc, x.v6, b, to)
}

// rawReader reads datagrams for one socket's single reader.
type rawReader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // made once: a closure per read would allocate
	buf []byte
	sa  syscall.RawSockaddrAny
	n   int
	err syscall.Errno
}

func newRawReader(rc syscall.RawConn) *rawReader {
	r := &rawReader{rc: rc}
	r.fn = r.recv
	return r
}

func (r *rawReader) recv(fd uintptr) bool {
	for {
		salen := uint32(syscall.SizeofSockaddrAny)
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))),
			uintptr(len(r.buf)), 0, uintptr(unsafe.Pointer(&r.sa)), uintptr(unsafe.Pointer(&salen)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the netpoller waits for the next datagram
		}
		r.n, r.err = int(n), e
		return true
	}
}

// read reads one datagram into b.
func (r *rawReader) read(b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return 0, netip.AddrPort{}, errors.New("relay: empty read buffer")
	}
	r.buf = b
	err := r.rc.Read(r.fn)
	r.buf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err // closed: as net.UDPConn's error
	}
	if r.err != 0 {
		return 0, netip.AddrPort{}, r.err
	}
	return r.n, sockaddrAddrPort(&r.sa), nil
}

// sockaddrAddrPort decodes the sender's address.
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

// rawWrite is one sendto's state; each socket pools its own (rawIO.w).
type rawWrite struct {
	fn    func(fd uintptr) bool
	b     []byte
	sa    syscall.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	salen uintptr
	err   syscall.Errno
}

// newRawWrite is a rawIO pool's New.
func newRawWrite() any {
	w := &rawWrite{}
	w.fn = w.send
	return w
}

func (w *rawWrite) send(fd uintptr) bool {
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(w.b))),
			uintptr(len(w.b)), 0, uintptr(unsafe.Pointer(&w.sa)), w.salen)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the netpoller waits until the socket takes it, as net.UDPConn would
		}
		w.err = e
		return true
	}
}

// write sends b to to on the socket rc, whose family is v6 or not.
func (w *rawWrite) write(rc syscall.RawConn, v6 bool, b []byte, to netip.AddrPort) error {
	if !w.setAddr(v6, to) {
		return errUnsupportedAddr
	}
	w.b, w.err = b, 0
	err := rc.Write(w.fn)
	w.b = nil
	if err != nil {
		return err
	}
	if w.err != 0 {
		return w.err
	}
	return nil
}

func (w *rawWrite) setAddr(v6 bool, to netip.AddrPort) bool {
	a := to.Addr()
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], to.Port())
	if !v6 {
		if a = a.Unmap(); !a.Is4() {
			return false
		}
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&w.sa))
		*sa = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Port: *(*uint16)(unsafe.Pointer(&port)), Addr: a.As4()}
		w.salen = syscall.SizeofSockaddrInet4
		return true
	}
	w.sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Port: *(*uint16)(unsafe.Pointer(&port)), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if i, err := strconv.ParseUint(z, 10, 32); err == nil {
			w.sa.Scope_id = uint32(i)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			w.sa.Scope_id = uint32(ifi.Index)
		}
	}
	w.salen = syscall.SizeofSockaddrInet6
	return true
}
