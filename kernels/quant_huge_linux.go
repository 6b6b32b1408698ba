package kernels

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge asks Linux to back the whole 2 MiB pages inside the n bytes
// at p with transparent huge pages (MADV_HUGEPAGE, honoured where the
// system's policy is "madvise", as here), and to collapse at once the ones
// the Go heap had already faulted in as 4 KiB pages (MADV_COLLAPSE, Linux
// 6.1+). Failures are ignored: the weights stay correct on small pages.
func adviseHuge(p unsafe.Pointer, n int) {
	const huge = 2 << 20
	a := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + uintptr(n)) &^ (huge - 1)
	if end <= a {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, a-uintptr(p))), end-a)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	_ = unix.Madvise(b, unix.MADV_COLLAPSE)
}
