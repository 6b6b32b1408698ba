package kernels

import (
	"math"
	"testing"
)

// geluRef uses erfc: 1+erf(x/sqrt2) cancels to nothing in float64 below x = -6.
func geluRef(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }

func geluGradRef(x float64) float64 {
	return 0.5*math.Erfc(-x/math.Sqrt2) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
}

// TestGELUAccuracy sweeps x densely over [-12, 12] (past the point where
// float32 GELU saturates) and checks forward and derivative against
// float64 math.Erfc, both through the slice kernels with the parallel path
// forced on and off.
func TestGELUAccuracy(t *testing.T) {
	const n = 240001
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(-12 + 24*float64(i)/float64(n-1))
	}
	x[0], x[1], x[2] = 0, float32(math.SmallestNonzeroFloat32), -1e-30
	x[3], x[4] = 1e30, -1e30 // far outside the table
	dy := make([]float32, n)
	for i := range dy {
		dy[i] = 1 + float32(i%7)*0.25
	}
	for _, pmin := range []int{1 << 30, 1} {
		withParallelMin(t, pmin)
		y := make([]float32, n)
		dx := make([]float32, n)
		GELU(y, x)
		GELUBackward(dx, dy, x)
		maxAbs, maxRel, maxGrad := 0.0, 0.0, 0.0
		for i, v := range x {
			want := geluRef(float64(v))
			d := math.Abs(float64(y[i]) - want)
			// Bound: 2 float32 ulps of the value, or 4e-7*|x| (the erf
			// approximation's absolute error times x).
			// float32 rounding of Phi near 1 is 6e-8, times |x|.
			tol := 2.5e-7*math.Abs(want) + 1e-7*math.Abs(float64(v)) + 1e-14
			if d > tol {
				t.Fatalf("GELU(%g) = %g, want %g (diff %.3g > %.3g)", v, y[i], want, d, tol)
			}
			maxAbs = math.Max(maxAbs, d)
			if math.Abs(want) > 1e-37 && math.Abs(float64(v)) <= 8 { // normal floats only
				maxRel = math.Max(maxRel, d/math.Abs(want))
			}
			g := float64(dy[i]) * geluGradRef(float64(v))
			dg := math.Abs(float64(dx[i]) - g)
			if dg > 3e-7*math.Abs(float64(dy[i]))*(1+math.Abs(float64(v))) {
				t.Fatalf("GELU'(%g)*%g = %g, want %g", v, dy[i], dx[i], g)
			}
			maxGrad = math.Max(maxGrad, dg)
		}
		t.Logf("parallelMin %d: GELU max abs %.3g max rel %.3g (|x| <= 8); grad max abs %.3g", pmin, maxAbs, maxRel, maxGrad)
		if g := GELUValue(x[n/3]); g != y[n/3] {
			t.Fatalf("GELUValue(%g) = %g, slice kernel %g", x[n/3], g, y[n/3])
		}
	}
}

// TestGELUSpecial: NaN propagates, +Inf passes through, values past the
// table's +-8 saturate to x and ~0.
func TestGELUSpecial(t *testing.T) {
	nan := float32(math.NaN())
	if g := GELUValue(nan); !math.IsNaN(float64(g)) {
		t.Fatalf("GELU(NaN) = %g", g)
	}
	dx := []float32{0}
	GELUBackward(dx, []float32{1}, []float32{nan})
	if !math.IsNaN(float64(dx[0])) {
		t.Fatalf("GELU'(NaN) = %g", dx[0])
	}
	if g := GELUValue(float32(math.Inf(1))); !math.IsInf(float64(g), 1) {
		t.Fatalf("GELU(+Inf) = %g", g)
	}
	for _, v := range []float32{8.5, 9.5, 100, 3e38, float32(math.Inf(1))} {
		if g := GELUValue(v); g != v && !math.IsInf(float64(v), 0) {
			t.Fatalf("GELU(%g) = %g, want %g", v, g, v)
		}
		if g := GELUValue(-v); g != 0 && !math.IsInf(float64(v), 0) { // -Inf*0: NaN, as PyTorch
			t.Fatalf("GELU(%g) = %g, want 0", -v, g)
		}
		d := []float32{0, 0}
		GELUBackward(d, []float32{1, 1}, []float32{v, -v})
		if d[0] != 1 || d[1] != 0 {
			t.Fatalf("GELU'(+-%g) = %g, %g, want 1, 0", v, d[0], d[1])
		}
	}
}

// withParallelMin lowers or raises the parallel threshold for one test.
func withParallelMin(t *testing.T, n int) {
	old := parallelMin
	parallelMin = n
	t.Cleanup(func() { parallelMin = old })
}

func BenchmarkGELU(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x := randSlice(rows*c, 1)
		y := make([]float32, len(x))
		return int64(8 * len(x)), func() { GELU(y, x) }
	})
}

func BenchmarkGELUBackward(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x, dy := randSlice(rows*c, 1), randSlice(rows*c, 2)
		dx := make([]float32, len(x))
		return int64(12 * len(x)), func() { GELUBackward(dx, dy, x) }
	})
}
