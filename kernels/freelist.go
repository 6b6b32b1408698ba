package kernels

import (
	"runtime"
	"sync"
)

// freeList keeps spare call buffers (*T) for reuse. It is a small free
// list rather than a sync.Pool: a sync.Pool is emptied by every garbage
// collection, and re-growing megabytes of packing buffers after each GC
// (page faults included) is exactly the re-allocation on the hot path this
// package avoids. At most one buffer set per possible concurrent caller is
// kept.
type freeList[T any] struct {
	mu   sync.Mutex
	list []*T
}

// get returns a spare *T, or a new one.
func (f *freeList[T]) get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.list); n > 0 {
		w := f.list[n-1]
		f.list = f.list[:n-1]
		return w
	}
	return new(T)
}

// put keeps w for a later get, unless as many are kept as callers could
// run at once.
func (f *freeList[T]) put(w *T) {
	f.mu.Lock()
	if len(f.list) < 2*runtime.GOMAXPROCS(0)+2 {
		f.list = append(f.list, w)
	}
	f.mu.Unlock()
}
