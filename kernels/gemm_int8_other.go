//go:build !amd64

package kernels

// int8Asm is false off amd64: GemmQ dequantizes int8 weights instead.
func int8Asm() bool { return false }

func quantU8RowAVX512(x *float32, k, group int, q *byte, s *float32, ss int) {
	panic("kernels: no int8 quantizer on this architecture")
}

func int8Tile(rows, ng, gq int, a *byte, lda int, as *float32, ass int, w *byte, c *float32, ldc, accum int) {
	panic("kernels: no int8 kernel on this architecture")
}
