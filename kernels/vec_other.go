//go:build !amd64

package kernels

// vec reports whether the AVX-512 vector kernels are in use: never here.
func vec() bool { return false }

const noVec = "kernels: no vector kernel on this architecture"

func addAVX512(dst, a, b *float32, n int)                       { panic(noVec) }
func mulAVX512(dst, a, b *float32, n int)                       { panic(noVec) }
func axpyAVX512(dst *float32, alpha float32, x *float32, n int) { panic(noVec) }
func axpbyAVX512(dst *float32, a float32, x *float32, b float32, y *float32, n int) {
	panic(noVec)
}
func scaleAVX512(dst *float32, s float32, x *float32, n int) { panic(noVec) }
func epilogueAddAVX512(c *float32, ldc, rows, cols int, bias, res *float32, ldr int) {
	panic(noVec)
}
func affineColsAVX512(y, x, a, b *float32, rows, c int)                    { panic(noVec) }
func affineCols2AVX512(y, x, a, zz, b, m, d *float32, rows, c int)         { panic(noVec) }
func affineCols2ResAVX512(y, x, a, zz, b, m, d, res *float32, rows, c int) { panic(noVec) }
func lnBwdResAVX512(dx, dy, x, mean, rstd, w, res *float32, rows, c int, inv float32) {
	panic(noVec)
}
func lnMixBwdAVX512(dx, dy, x, mean, rstd, w, k1, k2, mu, k3 *float32, rows, c int, inv, lam float32) {
	panic(noVec)
}
func lnMixBwdResAVX512(dx, dy, x, mean, rstd, w, k1, k2, mu, k3, res *float32, rows, c int, inv, lam float32) {
	panic(noVec)
}
func lnMixFwdAVX512(y, mean, rstd, x, w, b, gm, mu, beta *float32, rows, c int, inv, eps, lam, oml, skip float32) {
	panic(noVec)
}
func lnBNSumsAVX512(sdy, sdyc, sdyh, dy, x, mu, mean, rstd *float32, rows, ld, n int) { panic(noVec) }
func addRowVecAVX512(y, x, v *float32, rows, c int)                                   { panic(noVec) }
func colSumsAVX512(dst, x *float32, rows, ld, n int)                                  { panic(noVec) }
func colSumsDotAVX512(sx, sxy, x, y, m *float32, rows, ld, n int)                     { panic(noVec) }
func lnParamGradAVX512(dw, db, dy, x, mean, rstd *float32, rows, ld, n int)           { panic(noVec) }
func colSumSq64AVX512(sum, sq *float64, x *float32, rows, ld, n int)                  { panic(noVec) }
func lnFwdAVX512(y, mean, rstd, x, w, b *float32, rows, c int, inv, eps float32) {
	panic(noVec)
}
func lnBwdAVX512(dx, dy, x, mean, rstd, w *float32, rows, c int, inv float32) { panic(noVec) }
func geluAVX512(y, x *float32, n int)                                         { panic(noVec) }
func geluRowsAVX512(c *float32, ldc, rows, cols int)                          { panic(noVec) }
func geluBwdAVX512(dx, dy, x *float32, n int)                                 { panic(noVec) }
func adamwAVX512(w, grad, m, v *float32, n int, k *float32)                   { panic(noVec) }
func sumSqAVX512(x *float32, n int) float64                                   { panic(noVec) }

func dwRowAVX512(out *float32, ldo int, in *float32, ldi int, wt, bias *float32, h, w, c, k, y, acc, flip int) {
	panic(noVec)
}
func dwTapDot2DAVX512(dw, a *float32, lda, arow int, b *float32, ldb, brow, c, count, rows int) {
	panic(noVec)
}

func headMM8AVX512(c *float32, ldc int, a *float32, sI, sP int, b *float32, ldb, k int, masks uint32, accum int) {
	panic(noVec)
}

func transposeScaleAVX512(dst *float32, ldd int, src *float32, lds, rows, cols int, s float32) {
	panic(noVec)
}
