package sfu

import (
	"encoding/binary"
	"net"
	"syscall"
)

// enableRxTimestamps asks the kernel to stamp every datagram c receives
// (SO_TIMESTAMPNS: CLOCK_REALTIME, in ns, taken when the packet is queued
// to the socket; on loopback that is during the sender's sendto).
func enableRxTimestamps(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// rxTimestamp finds SCM_TIMESTAMPNS in a recvmsg's control data, without
// allocating (syscall.ParseSocketControlMessage would): wall-clock ns.
func rxTimestamp(oob []byte) (int64, bool) {
	const hdr = syscall.SizeofCmsghdr
	for len(oob) >= hdr {
		var l int
		if hdr == 16 { // 64-bit: Len is a uint64
			l = int(binary.NativeEndian.Uint64(oob))
		} else {
			l = int(binary.NativeEndian.Uint32(oob))
		}
		level := int32(binary.NativeEndian.Uint32(oob[hdr-8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[hdr-4:]))
		if l < hdr || l > len(oob) {
			return 0, false
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			d := oob[hdr:]
			if hdr == 16 {
				return int64(binary.NativeEndian.Uint64(d))*1e9 + int64(binary.NativeEndian.Uint64(d[8:])), true
			}
			return int64(binary.NativeEndian.Uint32(d))*1e9 + int64(binary.NativeEndian.Uint32(d[4:])), true
		}
		const word = 4 << (^uintptr(0) >> 63)
		step := (l + word - 1) &^ (word - 1) // CMSG_ALIGN
		if step > len(oob) {
			return 0, false
		}
		oob = oob[step:]
	}
	return 0, false
}
