//go:build !unix

package childproc

import (
	"errors"
	"net"
	"os"
	"syscall"
)

var errNotUnix = errors.New("process-per-session mode needs a Unix system")

func socketPair() (net.Conn, *os.File, error) { return nil, nil, errNotUnix }

func killGroup(pid int, sig syscall.Signal) {}

func sysProcAttr() *syscall.SysProcAttr { return nil }
