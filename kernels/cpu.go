package kernels

import (
	"os"
	"strings"
)

// Path names the family of microkernels in use.
type Path string

// The kernel paths. PathGeneric is pure Go and runs everywhere; the others
// need the named instruction sets and are chosen at init when the CPU has
// them, unless SLAB_KERNELS=generic.
const (
	PathGeneric Path = "generic"
	PathAVX2    Path = "avx2"
	PathAVX512  Path = "avx512"
)

// bestPath is the fastest path this CPU supports; curPath the one in use.
var bestPath, curPath Path

func init() {
	bestPath = detectPath()
	curPath = bestPath
	if v := strings.ToLower(strings.TrimSpace(os.Getenv("SLAB_KERNELS"))); v != "" {
		switch Path(v) {
		case PathGeneric, PathAVX2, PathAVX512:
			// An unsupported request silently falls back to what the CPU
			// has: the variable is a tuning knob, not a correctness switch.
			if supported(Path(v)) {
				curPath = Path(v)
			}
		}
	}
	selectKernels(curPath)
}

// KernelPath reports the microkernel family in use.
func KernelPath() Path { return curPath }

// SetKernelPath switches the microkernel family (for tests and benchmarks
// comparing paths) and returns the previous one. A path the CPU cannot run
// is refused with false. Not safe to call while kernels are running.
func SetKernelPath(p Path) (prev Path, ok bool) {
	prev = curPath
	if !supported(p) {
		return prev, false
	}
	curPath = p
	selectKernels(p)
	return prev, true
}

func supported(p Path) bool {
	switch p {
	case PathGeneric:
		return true
	case PathAVX2:
		return bestPath == PathAVX2 || bestPath == PathAVX512
	case PathAVX512:
		return bestPath == PathAVX512
	}
	return false
}
