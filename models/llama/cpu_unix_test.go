//go:build unix

package llama_test

import "syscall"

// userCPU is the user+system CPU time of the process so far, in seconds.
func userCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
