//go:build unix

package state

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, all threads: on a
// loaded machine a steadier figure than the wall clock.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
