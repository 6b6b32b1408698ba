//go:build !amd64

package kernels

func detectPath() Path { return PathGeneric }

// spinPause is an empty busy-wait step where no PAUSE instruction is wired.
func spinPause() {}

func selectKernels(Path) { uk = genericKernel }

func callKernel(kernelKind, int, *float32, int, *float32, int, *float32, int, int) {
	panic("kernels: no assembly microkernel on this architecture")
}

func callDot4(int, *float32, *float32, int, *float32) {
	panic("kernels: no assembly GEMV kernel on this architecture")
}

func callDot8(int, *float32, *float32, int, *float32) {
	panic("kernels: no assembly GEMV kernel on this architecture")
}

func callKernelDA(int, *float32, int, *float32, int, *float32, int, int) {
	panic("kernels: no assembly microkernel on this architecture")
}

func transpose16(int, *float32, int, *float32, int) {
	panic("kernels: no assembly transpose on this architecture")
}

func peakLoop(Path) (func(n int), float64) { return nil, 0 }

func readSum(int, *float32) float32 { panic("kernels: no vector read loop on this architecture") }

func kernelAVX512Rows(bool, int, int, int, *float32, int, *float32, int, *float32, int, int, *float32, *float32) {
	panic("kernels: no assembly microkernel on this architecture")
}

// prefetchL2 is a no-op where no prefetch instruction is wired.
func prefetchL2(*float32, int, int) {}
