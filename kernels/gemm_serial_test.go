package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// TestGemmSerial checks GemmSerial against the float64 reference and, bit
// for bit, against the HeadMatMul call it replaces, on every kernel path,
// over tile edges in m and n (full, 16-wide and packed partial panels),
// k from 1 to past a GEMM k slice, and strided operands.
func TestGemmSerial(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			var worst float64
			for _, m := range []int{1, 5, 12, 13, 48} {
				for _, n := range []int{1, 5, 16, 17, 32, 49, 64, 197} {
					for _, k := range []int{1, 7, 64, 197, 300} {
						lda, ldb, ldc := k+3, n+5, n+2
						a, b := gemmRand(rng, m*lda), gemmRand(rng, k*ldb)
						c, want := gemmRand(rng, m*ldc), make([]float32, m*ldc)
						copy(want, c) // elements between rows must survive
						GemmSerial(m, n, k, a, lda, b, ldb, c, ldc)
						HeadMatMul(m, n, k, a, lda, 1, b, ldb, want, ldc, false)
						ref, mag := refGemm(false, false, m, n, k, 1, a, lda, b, ldb, 0, nil, 0)
						for i := range m * ldc {
							if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s m=%d n=%d k=%d: c[%d] = %g, HeadMatMul gives %g", p, m, n, k, i, c[i], want[i])
							}
						}
						for i := range m {
							for j := range n {
								d := math.Abs(float64(c[i*ldc+j]) - ref[i*n+j])
								if d > 1e-6*mag[i*n+j]+1e-30 {
									t.Fatalf("%s m=%d n=%d k=%d: c[%d,%d] = %g, float64 reference %g", p, m, n, k, i, j, c[i*ldc+j], ref[i*n+j])
								}
								worst = max(worst, d/(mag[i*n+j]+1e-30))
							}
						}
					}
				}
			}
			t.Logf("%s: max |GemmSerial - float64| / sum|a||b| = %.3g, bit-identical to HeadMatMul", p, worst)
		})
	}
}

func TestGemmSerialNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	m, n, k := 48, 197, 64
	a, b, c := gemmRand(rng, m*k), gemmRand(rng, k*n), make([]float32, m*n)
	f := func() { GemmSerial(m, n, k, a, k, b, n, c, n) }
	f()
	if got := testing.AllocsPerRun(20, f); got > 0 {
		t.Errorf("GemmSerial allocates %.1f times per call", got)
	}
}

// BenchmarkGemmSerial times one forward attention task of DeiT-Tiny (48
// query rows of one head: Q·Kᵀ 48x64 · 64x197, then P·V 48x197 · 197x64)
// with GemmSerial against HeadMatMul, one thread.
func BenchmarkGemmSerial(b *testing.B) {
	const m, n, d, ld = 48, 197, 64, 576
	rng := rand.New(rand.NewSource(13))
	q, kT, v := gemmRand(rng, n*ld), gemmRand(rng, d*208), gemmRand(rng, n*ld)
	p208 := make([]float32, m*208)
	p, o := make([]float32, m*n), make([]float32, n*192)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"qk/GemmSerial", func() { GemmSerial(m, n, d, q, ld, kT, n, p, n) }},
		{"qk/HeadMatMul", func() { HeadMatMul(m, n, d, q, ld, 1, kT, n, p, n, false) }},
		{"qk/GemmSerial-kT208", func() { GemmSerial(m, n, d, q, ld, kT, 208, p, n) }},
		{"qk/GemmSerial-kT208-p208", func() { GemmSerial(m, n, d, q, ld, kT, 208, p208, 208) }},
		{"pv/GemmSerial", func() { GemmSerial(m, d, n, p, n, v, ld, o, 192) }},
		{"pv/HeadMatMul", func() { HeadMatMul(m, d, n, p, n, 1, v, ld, o, 192, false) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			// The best of batches of 20 calls: on a shared machine the
			// minimum is the stable figure.
			best := math.Inf(1)
			c0 := processCPU()
			for b.Loop() {
				t0 := processCPU()
				for range 20 {
					tc.f()
				}
				best = min(best, (processCPU()-t0).Seconds()/20)
			}
			if dc := processCPU() - c0; dc > 0 {
				b.ReportMetric(2*m*n*d*float64(20*b.N)/dc.Seconds()/1e9, "cpuGFLOP/s")
			}
			b.ReportMetric(2*m*n*d/best/1e9, "bestGFLOP/s")
		})
	}
}
