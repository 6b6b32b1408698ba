package kernels

import "fmt"

// Gemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices, where
// op(A) is m x k, op(B) is k x n and C is m x n. transA means A is stored as
// k x m (lda >= m), transB means B is stored as n x k (ldb >= k).
// beta == 0 overwrites C without reading it (NaNs in C do not propagate).
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gemmGeneric(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmStrided runs batch independent GEMMs; matrix i of A, B and C starts at
// i*strideA, i*strideB and i*strideC.
func GemmStrided(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	for i := 0; i < batch; i++ {
		Gemm(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc)
	}
}

func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels.Gemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need := func(name string, s []float32, rows, cols, ld int) {
		if rows == 0 || cols == 0 {
			return
		}
		if ld < cols {
			panic(fmt.Sprintf("kernels.Gemm: %s is %dx%d but ld=%d < %d", name, rows, cols, ld, cols))
		}
		if len(s) < (rows-1)*ld+cols {
			panic(fmt.Sprintf("kernels.Gemm: %s is %dx%d (ld %d) but has only %d elements", name, rows, cols, ld, len(s)))
		}
	}
	need("A", a, ar, ac, lda)
	need("B", b, br, bc, ldb)
	need("C", c, m, n, ldc)
}

// gemmGeneric is the portable path: correct everywhere, parallel over rows
// of C, cache-friendly i-k-j order. The fast path replaces it where the CPU
// allows.
func gemmGeneric(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ParallelFor(m, 8, func(lo, hi int) {
		var bt []float32
		if transB {
			// Transposing B once per chunk keeps the inner loop unit-stride.
			bt = make([]float32, k*n)
			for j := 0; j < n; j++ {
				for p := 0; p < k; p++ {
					bt[p*n+j] = b[j*ldb+p]
				}
			}
		}
		for i := lo; i < hi; i++ {
			ci := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(ci)
			} else if beta != 1 {
				for j := range ci {
					ci[j] *= beta
				}
			}
			for p := 0; p < k; p++ {
				var av float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				av *= alpha
				if av == 0 {
					continue
				}
				var bp []float32
				if transB {
					bp = bt[p*n : p*n+n]
				} else {
					bp = b[p*ldb : p*ldb+n]
				}
				for j, bv := range bp {
					ci[j] += av * bv
				}
			}
		}
	})
}
