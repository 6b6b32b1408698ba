//go:build !amd64

package kernels

func callGemmBF16(int, int, *uint16, int, *uint32, *float32, int, int) {
	panic("kernels: no assembly bf16 GEMM kernel on this architecture")
}

func cvtBF16AVX512(int, *float32, *uint16) {
	panic("kernels: no assembly bf16 conversion on this architecture")
}
