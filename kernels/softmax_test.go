package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpf(t *testing.T) {
	maxRel := 0.0
	for _, x := range []float32{-103, -100, -90, -87.5, -20, -1, -0.5, -1e-3, 0, 1e-3, 0.3466, 0.5, 1, 10, 50, 88.7} {
		got := float64(Expf(x))
		want := math.Exp(float64(x))
		rel := math.Abs(got-want) / want
		// Subnormal results are exact only to one subnormal step (1.4e-45).
		bad := rel > 4e-7
		if want < 1.2e-38 {
			bad = math.Abs(got-want) > 1.5e-45
		}
		if bad {
			t.Errorf("Expf(%g) = %g, want %g (rel %.3g)", x, got, want, rel)
		}
		if want > 1.2e-38 {
			maxRel = math.Max(maxRel, rel)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		x := float32(rng.Float64()*170 - 85)
		got := float64(Expf(x))
		want := math.Exp(float64(x))
		rel := math.Abs(got-want) / want
		maxRel = math.Max(maxRel, rel)
		if rel > 4e-7 {
			t.Fatalf("Expf(%g) = %g, want %g (rel %.3g)", x, got, want, rel)
		}
	}
	t.Logf("Expf max rel err %.3g", maxRel)
	if Expf(-200) != 0 || !math.IsInf(float64(Expf(100)), 1) || !math.IsNaN(float64(Expf(float32(math.NaN())))) {
		t.Errorf("Expf edge cases: %g %g %g", Expf(-200), Expf(100), Expf(float32(math.NaN())))
	}
}

// TestSoftmaxRows checks every kernel path the CPU supports against a
// float64 softmax and its gradient.
func TestSoftmaxRows(t *testing.T) {
	for _, p := range []Path{PathGeneric, PathAVX2, PathAVX512} {
		prev, ok := SetKernelPath(p)
		if !ok {
			t.Logf("path %s not supported here", p)
			continue
		}
		t.Run(string(p), testSoftmaxRows)
		SetKernelPath(prev)
	}
}

func testSoftmaxRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ rows, cols, ld int }{{1, 1, 1}, {3, 5, 7}, {17, 17, 17}, {4, 197, 200}, {2, 49, 49}, {2, 16, 16}, {3, 32, 40}, {2, 3136, 3136}} {
		x := make([]float32, tc.rows*tc.ld)
		dy := make([]float32, len(x))
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 5)
			dy[i] = float32(rng.NormFloat64())
		}
		x[0] = 1000 // stability: a huge logit must not overflow
		y := make([]float32, len(x))
		SoftmaxRows(y, x, tc.rows, tc.cols, tc.ld)
		dx := make([]float32, len(x))
		const scale = 0.125
		SoftmaxRowsBackward(dx, y, dy, tc.rows, tc.cols, tc.ld, scale)
		maxAbs, maxAbsG := 0.0, 0.0
		for r := 0; r < tc.rows; r++ {
			m := math.Inf(-1)
			for j := 0; j < tc.cols; j++ {
				m = math.Max(m, float64(x[r*tc.ld+j]))
			}
			s := 0.0
			p := make([]float64, tc.cols)
			for j := range p {
				p[j] = math.Exp(float64(x[r*tc.ld+j]) - m)
				s += p[j]
			}
			dotv := 0.0
			for j := range p {
				p[j] /= s
				dotv += p[j] * float64(dy[r*tc.ld+j])
			}
			for j := range p {
				maxAbs = math.Max(maxAbs, math.Abs(float64(y[r*tc.ld+j])-p[j]))
				g := scale * p[j] * (float64(dy[r*tc.ld+j]) - dotv)
				maxAbsG = math.Max(maxAbsG, math.Abs(float64(dx[r*tc.ld+j])-g))
			}
		}
		t.Logf("%v: softmax max abs diff %.3g, backward %.3g", tc, maxAbs, maxAbsG)
		// Long rows accumulate float32 rounding in the sum (the scalar path
		// has 2 partial sums, the vector path 16).
		if maxAbs > 4e-6 || maxAbsG > 1e-6 || math.IsNaN(maxAbs) || math.IsNaN(maxAbsG) {
			t.Errorf("%v: softmax diff %.3g, backward diff %.3g", tc, maxAbs, maxAbsG)
		}
	}
}

// BenchmarkSoftmax reports bytes moved: forward reads and writes each
// value once (8 B/value), backward reads y and dy and writes dx (12 B).
func BenchmarkSoftmax(b *testing.B) {
	for _, sh := range [][2]int{{197, 197}, {197, 192}, {3 * 197, 197}} {
		rows, cols := sh[0], sh[1]
		x := make([]float32, rows*cols)
		for i := range x {
			x[i] = float32(i%13) * 0.1
		}
		y := make([]float32, len(x))
		b.Run(fmt.Sprintf("fwd/%dx%d", rows, cols), func(b *testing.B) {
			b.SetBytes(int64(8 * len(x)))
			for b.Loop() {
				SoftmaxRows(y, x, rows, cols, cols)
			}
		})
		b.Run(fmt.Sprintf("bwd/%dx%d", rows, cols), func(b *testing.B) {
			b.SetBytes(int64(12 * len(x)))
			for b.Loop() {
				SoftmaxRowsBackward(x, y, x, rows, cols, cols, 1)
			}
		})
	}
}
