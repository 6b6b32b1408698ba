package kernels

import (
	"sync"
	"unsafe"
)

// Stored low-precision weights live on transparent huge pages where Linux
// allows (quant_huge_linux.go). A decode step streams every weight once,
// and on 4 KiB pages each of a GEMV thread's eight row streams pays a TLB
// walk every 4 KiB. A matrix holds a whole aligned 2 MiB page only if it
// spans more than 2-4 MiB, which a decoder's ~1 MiB q/k/v/o projections in
// int8 do not, so matrices from arenaMin bytes up are carved one after the
// other from arenaChunk-byte chunks advised before their first touch (a
// chunk lives as long as any matrix carved from it); smaller ones and
// ones above half a chunk get an allocation of their own.

const (
	arenaChunk = 32 << 20
	arenaMin   = 256 << 10
)

var arena struct {
	mu  sync.Mutex
	buf []byte // the current chunk's unused tail
}

// weightBytes returns n zeroed bytes for stored weights (see above).
func weightBytes(n int) []byte {
	if n < arenaMin || n > arenaChunk/2 {
		b := make([]byte, n)
		if n > 0 {
			adviseHuge(unsafe.Pointer(&b[0]), n)
		}
		return b
	}
	n64 := (n + 63) &^ 63 // keep every matrix 64-byte aligned
	arena.mu.Lock()
	defer arena.mu.Unlock()
	if len(arena.buf) < n64 {
		arena.buf = make([]byte, arenaChunk)
		adviseHuge(unsafe.Pointer(&arena.buf[0]), arenaChunk)
	}
	b := arena.buf[:n:n]
	arena.buf = arena.buf[n64:]
	return b
}

// weightU16 is weightBytes for n bf16 values.
func weightU16(n int) []uint16 {
	if n == 0 {
		return []uint16{}
	}
	b := weightBytes(2 * n)
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), n)
}
