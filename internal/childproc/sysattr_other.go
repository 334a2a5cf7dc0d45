//go:build unix && !linux

package childproc

import "syscall"

// sysProcAttr puts the child in its own process group. Without Linux's
// Pdeathsig, a child outlives a service killed by SIGKILL only until it
// sees its control channel close, then it exits.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
