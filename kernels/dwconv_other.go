//go:build !amd64

package kernels

func dwTapRun(o []float32, ldo int, in []float32, ldi int, w []float32, c, count int) {
	dwTapRunGo(o, ldo, in, ldi, w, c, count)
}

func dwTapDot(dw []float32, a []float32, lda int, b []float32, ldb int, c, count int) {
	dwTapDotGo(dw, a, lda, b, ldb, c, count)
}
