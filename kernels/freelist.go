package kernels

import (
	"runtime"
	"sync"
)

// FreeList keeps spare buffers (*T) for reuse by calls and parallel tasks:
// this package's per-call work buffers, and layers' per-task scratch (nn's
// evaluation attention), so that a task takes a buffer another task of
// the same core has just released and finds it in cache. It is a small
// free list rather than a sync.Pool: a sync.Pool is emptied by every
// garbage collection, and re-growing megabytes of buffers after each GC
// (page faults included) is exactly the re-allocation on the hot path this
// package avoids. At most one buffer per possible concurrent caller is
// kept. The zero value is ready to use.
type FreeList[T any] struct {
	mu   sync.Mutex
	list []*T
}

// Get returns a spare *T, or a new zero one.
func (f *FreeList[T]) Get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.list); n > 0 {
		w := f.list[n-1]
		f.list = f.list[:n-1]
		return w
	}
	return new(T)
}

// Put keeps w for a later Get, unless as many are kept as callers could
// run at once.
func (f *FreeList[T]) Put(w *T) {
	f.mu.Lock()
	if len(f.list) < 2*runtime.GOMAXPROCS(0)+2 {
		f.list = append(f.list, w)
	}
	f.mu.Unlock()
}
