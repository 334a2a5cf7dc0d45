//go:build !linux

package sfu

import "net"

// MuxConn is uc itself where raw system calls are not written for (see
// muxconn_linux.go).
func MuxConn(uc *net.UDPConn) net.PacketConn { return uc }
