//go:build !amd64

package kernels

const hasBF16, hasVNNI, hasI8X16 = false, false, false

func callBF16Widen(int, int, *float32, *uint16, int, *float32) {
	panic("kernels: no assembly bf16 kernel on this architecture")
}

func callBF16Dot(int, int, *uint16, *uint16, int, *float32) {
	panic("kernels: no assembly bf16 kernel on this architecture")
}

func callI8(int, int, int, *float32, *byte, int, *float32) {
	panic("kernels: no assembly int8 kernel on this architecture")
}

func callI8X16(int, int, int, *int16, *float32, *byte, int, *float32) {
	panic("kernels: no assembly int8 kernel on this architecture")
}

func lowPrecPeak(Dtype) (func(n int), float64) { return nil, 0 }

func absMaxAVX512(*float32, int) uint32 {
	panic("kernels: no assembly int16 quantizer on this architecture")
}

func quantI16AVX512(*float32, int, float32, *int16) {
	panic("kernels: no assembly int16 quantizer on this architecture")
}

func gemvBF16WB8AVX512(int, *float32, *uint16, int, int, *float32) {
	panic("kernels: no assembly bf16 kernel on this architecture")
}

func gemvBF16DB8AVX512(int, *uint16, *uint16, int, int, *float32) {
	panic("kernels: no assembly bf16 kernel on this architecture")
}

func gemvI8XB8AVX512(int, int, *int16, *float32, *byte, int, int, *float32) {
	panic("kernels: no assembly int8 kernel on this architecture")
}

func gemvI8XB8G64AVX512(int, int, *int16, *float32, *byte, int, int, *float32) {
	panic("kernels: no assembly int8 kernel on this architecture")
}
