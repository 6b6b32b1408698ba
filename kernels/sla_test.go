package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestHeadMatMul checks HeadMatMul on every supported path against a
// float64 product, for both layouts of A, with and without accumulation,
// over row counts around the 4-row block and widths around the 16-lane
// groups and the 64-column block.
func TestHeadMatMul(t *testing.T) {
	for _, p := range []Path{PathGeneric, PathAVX512} {
		prev, ok := SetKernelPath(p)
		if !ok {
			continue
		}
		t.Run(string(p), testHeadMatMul)
		SetKernelPath(prev)
	}
}

func testHeadMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	worst := 0.0
	for _, m := range []int{1, 3, 4, 5, 8, 9, 17, 49} {
		for _, n := range []int{1, 16, 20, 32, 64, 70, 130} {
			for _, k := range []int{0, 1, 7, 64} {
				for _, trans := range []bool{false, true} {
					for _, accum := range []bool{false, true} {
						name := fmt.Sprintf("m%d n%d k%d trans=%v accum=%v", m, n, k, trans, accum)
						// A stored m x k (lda = k+3) or k x m (lda = m+2).
						lda, sI, sP := k+3, k+3, 1
						size := m * lda
						if trans {
							lda = m + 2
							sI, sP = 1, lda
							size = max(k, 1) * lda
						}
						a := make([]float32, size)
						ldb, ldc := n+5, n+1
						b := make([]float32, max(k, 1)*ldb)
						c := make([]float32, m*ldc)
						for i := range a {
							a[i] = float32(rng.NormFloat64())
						}
						for i := range b {
							b[i] = float32(rng.NormFloat64())
						}
						for i := range c {
							c[i] = float32(rng.NormFloat64())
						}
						c0 := append([]float32(nil), c...)
						HeadMatMul(m, n, k, a, sI, sP, b, ldb, c, ldc, accum)
						for i := 0; i < m; i++ {
							for j := 0; j < ldc; j++ {
								want := float64(c0[i*ldc+j])
								if j < n {
									s := 0.0
									for p := 0; p < k; p++ {
										s += float64(a[i*sI+p*sP]) * float64(b[p*ldb+j])
									}
									if accum {
										want += s
									} else {
										want = s
									}
								}
								d := math.Abs(float64(c[i*ldc+j]) - want)
								worst = math.Max(worst, d)
								if d > 1e-4 || math.IsNaN(d) {
									t.Fatalf("%s: C[%d,%d] = %g, want %g", name, i, j, c[i*ldc+j], want)
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("max abs diff %.3g", worst)
}

// BenchmarkHeadMatMul times the two SLA forward products of one DeiT-Tiny
// head (d = 64) at N tokens: S = KᵀV (64 x 64 over N) and Q·S (N x 64 over
// 64), serial, in GFLOP/s.
// BenchmarkHeadMatMul32 times the head products of the 28px training
// models (head width 32, 49 tokens, row stride 64): S rows in blocks of 16
// (transposed A) and whole-map Q·S.
func BenchmarkHeadMatMul32(b *testing.B) {
	const d, ld, n = 32, 64, 49
	q := make([]float32, n*ld)
	for i := range q {
		q[i] = float32(i%5) * 0.1
	}
	s := make([]float32, d*d)
	o := make([]float32, n*ld)
	b.Run("KtV16", func(b *testing.B) {
		for b.Loop() {
			HeadMatMul(16, d, n, q, 1, ld, q, ld, s, d, false)
			HeadMatMul(16, d, n, q[16:], 1, ld, q, ld, s[16*d:], d, false)
		}
		b.ReportMetric(float64(2*d*d*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("QS49", func(b *testing.B) {
		for b.Loop() {
			HeadMatMul(n, d, d, q, ld, 1, s, d, o, ld, false)
		}
		b.ReportMetric(float64(2*d*d*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

func BenchmarkHeadMatMul(b *testing.B) {
	const d, ld = 64, 192
	for _, n := range []int{196, 3136} {
		q := make([]float32, n*ld)
		for i := range q {
			q[i] = float32(i%5) * 0.1
		}
		s := make([]float32, d*d)
		o := make([]float32, n*ld)
		b.Run(fmt.Sprintf("KtV/N%d", n), func(b *testing.B) {
			for b.Loop() {
				HeadMatMul(d, d, n, q, 1, ld, q, ld, s, d, false)
			}
			b.ReportMetric(float64(2*d*d*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("QS/N%d", n), func(b *testing.B) {
			for b.Loop() {
				HeadMatMul(n, d, d, q, ld, 1, s, d, o, ld, false)
			}
			b.ReportMetric(float64(2*d*d*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("gemm-KtV/N%d", n), func(b *testing.B) {
			for b.Loop() {
				Gemm(true, false, d, d, n, 1, q, ld, q, ld, 0, s, d)
			}
			b.ReportMetric(float64(2*d*d*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("gemm-QS/N%d", n), func(b *testing.B) {
			for b.Loop() {
				Gemm(false, false, n, d, d, 1, q, ld, s, d, 0, o, ld)
			}
			b.ReportMetric(float64(2*d*d*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
