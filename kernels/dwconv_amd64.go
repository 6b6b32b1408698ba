package kernels

//go:noescape
func dwTapRunAVX512(o *float32, ldo int, in *float32, ldi int, w *float32, c int, count int)

//go:noescape
func dwTapDotAVX512(dw *float32, a *float32, lda int, b *float32, ldb int, c int, count int)

func dwTapRun(o []float32, ldo int, in []float32, ldi int, w []float32, c, count int) {
	if count <= 0 || c <= 0 {
		return
	}
	if curPath == PathAVX512 {
		// Bounds of the last pixel, checked once so the kernel may run free.
		_ = o[(count-1)*ldo+c-1]
		_ = in[(count-1)*ldi+c-1]
		_ = w[c-1]
		dwTapRunAVX512(&o[0], ldo, &in[0], ldi, &w[0], c, count)
		return
	}
	dwTapRunGo(o, ldo, in, ldi, w, c, count)
}

func dwTapDot(dw []float32, a []float32, lda int, b []float32, ldb int, c, count int) {
	if count <= 0 || c <= 0 {
		return
	}
	if curPath == PathAVX512 {
		_ = a[(count-1)*lda+c-1]
		_ = b[(count-1)*ldb+c-1]
		_ = dw[c-1]
		dwTapDotAVX512(&dw[0], &a[0], lda, &b[0], ldb, c, count)
		return
	}
	dwTapDotGo(dw, a, lda, b, ldb, c, count)
}
