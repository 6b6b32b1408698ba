//go:build !amd64

package kernels

func detectPath() Path { return PathGeneric }

// spinPause is an empty busy-wait step where no PAUSE instruction is wired.
func spinPause() {}

func selectKernels(Path) { uk = genericKernel }

func callKernel(kernelKind, int, *float32, *float32, *float32, int, int) {
	panic("kernels: no assembly microkernel on this architecture")
}

func callDot4(int, *float32, *float32, int, *float32) {
	panic("kernels: no assembly GEMV kernel on this architecture")
}
