//go:build unix

package testutil

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time (user + system) this process has used so far;
// benchmarks report it per operation, since on a shared machine wall time
// says little. 0 where it cannot be read.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
