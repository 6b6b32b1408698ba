package kernels

import "golang.org/x/sys/cpu"

func detectPath() Path {
	// AVX-512 F is enough for the ZMM kernels (no BW/DQ instructions are
	// used); x/sys/cpu already checks that the OS saves the ZMM state.
	switch {
	case cpu.X86.HasAVX512F:
		return PathAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return PathAVX2
	}
	return PathGeneric
}
