//go:build !linux

package sfu

import (
	"net"
	"net/netip"
)

// rawSender is net.UDPConn's write where raw system calls are not
// written for (see rawsend_linux.go).
type rawSender struct{ uc *net.UDPConn }

// socketV6 reports whether uc is an IPv6 socket, from its address.
func socketV6(uc *net.UDPConn) (bool, error) {
	a, ok := uc.LocalAddr().(*net.UDPAddr)
	return ok && a.IP.To4() == nil, nil
}

func newRawSender(uc *net.UDPConn, _ bool) (*rawSender, error) { return &rawSender{uc}, nil }

func (s *rawSender) send(b []byte, to netip.AddrPort) (int, error) {
	return s.uc.WriteToUDPAddrPort(b, to)
}
