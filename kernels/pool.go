package kernels

import (
	"runtime"
	"sync"
)

// threads is the number of workers ParallelFor uses.
var threads = runtime.GOMAXPROCS(0)

// SetThreads sets how many threads kernels use (n < 1 means GOMAXPROCS).
func SetThreads(n int) {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	threads = n
}

// Threads reports how many threads kernels use.
func Threads() int { return threads }

// ParallelFor splits [0, n) into at most Threads() contiguous chunks of at
// least grain items and runs fn on each, the calling goroutine taking one.
// It returns when all chunks are done.
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	if grain < 1 {
		grain = 1
	}
	t := threads
	if m := (n + grain - 1) / grain; m < t {
		t = m
	}
	if t <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + t - 1) / t
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	fn(0, min(chunk, n))
	wg.Wait()
}
