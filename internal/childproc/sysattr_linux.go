package childproc

import "syscall"

// sysProcAttr puts the child in its own process group, so it and anything
// it starts are signalled together, and has the kernel SIGKILL it when the
// service dies, even by kill -9. (Pdeathsig follows the OS thread that
// forked the child; the Go runtime does not end its threads while the
// process lives, except a goroutine's locked thread, which this package
// never uses.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
