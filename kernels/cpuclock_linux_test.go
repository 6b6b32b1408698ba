package kernels

import (
	"time"

	"golang.org/x/sys/unix"
)

// processCPU is the CPU time all threads of this process have used. On the
// shared machines the wall clock of a 2-thread kernel includes time the OS
// gave to other tenants; work per CPU-second does not, so benchmarks report
// it beside the wall-clock rate.
func processCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// threadCPU is the calling thread's CPU time (for benchmarks locked to
// one thread: a preempted stretch costs none).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
