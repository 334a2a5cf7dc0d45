//go:build !linux

package rawudp

import (
	"net"
	"net/netip"
)

// IsV6 reports whether uc is an IPv6 socket, from its address.
func IsV6(uc *net.UDPConn) (bool, error) {
	a, ok := uc.LocalAddr().(*net.UDPAddr)
	return ok && a.IP.To4() == nil, nil
}

// DontFragment is Linux's socket option only: elsewhere, nothing.
func DontFragment(*net.UDPConn) error { return nil }

// Reader is net.UDPConn's read where raw system calls are not written for.
type Reader struct{ uc *net.UDPConn }

func NewReader(uc *net.UDPConn) (*Reader, error) { return &Reader{uc}, nil }

func (r *Reader) Read(b []byte) (int, netip.AddrPort, error) { return r.uc.ReadFromUDPAddrPort(b) }

// Sender is net.UDPConn's write where raw system calls are not written for.
type Sender struct{ uc *net.UDPConn }

func NewSender(uc *net.UDPConn, _ bool) (*Sender, error) { return &Sender{uc}, nil }

func (s *Sender) Send(b []byte, to netip.AddrPort) (int, error) {
	return s.uc.WriteToUDPAddrPort(b, to)
}
