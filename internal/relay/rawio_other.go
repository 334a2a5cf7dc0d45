//go:build !linux

package relay

import (
	"net"
	"net/netip"
)

// rawIO is net.UDPConn's I/O where raw system calls are not written for
// (see rawio.go).
type rawIO struct{ uc *net.UDPConn }

func newRawIO(uc *net.UDPConn) (rawIO, error) { return rawIO{uc}, nil }

func (x rawIO) read(b []byte) (int, netip.AddrPort, error) { return x.uc.ReadFromUDPAddrPort(b) }

func (x rawIO) write(b []byte, to netip.AddrPort) error {
	_, err := x.uc.WriteToUDPAddrPort(b, to)
	return err
}
