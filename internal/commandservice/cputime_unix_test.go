//go:build unix

package commandservice

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the test process has used: service,
// clients and embedded server alike.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
