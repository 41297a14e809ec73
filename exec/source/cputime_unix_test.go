//go:build unix

package source

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used,
// all threads included (GC too). Benchmarks divide by it: on a shared
// machine wall time measures the neighbours as much as the code.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
