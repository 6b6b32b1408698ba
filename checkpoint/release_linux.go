package checkpoint

import (
	"syscall"
	"unsafe"
)

// releaseBytes returns the whole pages inside b to the kernel
// (MADV_DONTNEED): they read as zeros if touched again, so only bytes
// nothing will read are passed (Entry.Release drops its views first).
// The partial pages at either end stay, as they may hold a neighbour's
// values.
func releaseBytes(b []byte) {
	const page = 4096
	if len(b) < 2*page {
		return
	}
	p := uintptr(unsafe.Pointer(&b[0]))
	lo := (p + page - 1) &^ (page - 1)
	hi := (p + uintptr(len(b))) &^ (page - 1)
	if hi <= lo {
		return
	}
	_ = syscall.Madvise(b[lo-p:hi-p], syscall.MADV_DONTNEED)
}
