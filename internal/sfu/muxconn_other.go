//go:build !linux

package sfu

import "net"

// MuxConn is uc itself where raw system calls are not written for (see
// muxconn_linux.go).
func MuxConn(uc *net.UDPConn) net.PacketConn { return uc }

// MuxConnWith is uc itself: the tap is never attached, so the engine
// leaves every publisher on pion's read path.
func MuxConnWith(uc *net.UDPConn, _ *ReadTap) net.PacketConn { return uc }
