//go:build unix

package childproc

import (
	"net"
	"os"
	"syscall"
)

// socketPair returns the parent's end of a new control channel and the file
// the child inherits as fd 3. Both are close-on-exec, so no other child
// spawned meanwhile inherits them.
func socketPair() (net.Conn, *os.File, error) {
	syscall.ForkLock.RLock() // no fork between socketpair and close-on-exec
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	pf := os.NewFile(uintptr(fds[0]), "control-parent")
	defer pf.Close() // FileConn holds its own duplicate
	parent, err := net.FileConn(pf)
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return parent, os.NewFile(uintptr(fds[1]), "control-child"), nil
}

// killGroup signals the child's process group (its pid: Setpgid).
func killGroup(pid int, sig syscall.Signal) {
	if pid > 0 {
		syscall.Kill(-pid, sig)
	}
}
