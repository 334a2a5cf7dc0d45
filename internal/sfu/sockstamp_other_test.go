//go:build !linux

package sfu

import (
	"errors"
	"net"
)

// enableRxTimestamps: kernel receive times are read on Linux only; other
// systems file the time the read returned.
func enableRxTimestamps(*net.UDPConn) error { return errors.ErrUnsupported }

func rxTimestamp([]byte) (int64, bool) { return 0, false }
