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

// vecPaths returns the paths whose elementwise kernels differ: the pure-Go
// loops and, where the CPU has it, the AVX-512 kernels.
func vecPaths() []Path {
	ps := []Path{PathGeneric}
	if supported(PathAVX512) {
		ps = append(ps, PathAVX512)
	}
	return ps
}

// forPaths runs f once per elementwise kernel path, restoring the path.
func forPaths(t *testing.T, f func(t *testing.T, p Path)) {
	for _, p := range vecPaths() {
		t.Run(string(p), func(t *testing.T) {
			prev, _ := SetKernelPath(p)
			defer SetKernelPath(prev)
			f(t, p)
		})
	}
}

// TestGELUAccuracy sweeps x densely over [-12, 12] (past the point where
// float32 GELU saturates) and checks forward and derivative against
// float64 math.Erfc, through the slice kernels with the parallel path
// forced on and off, on both kernel paths. The stated accuracy of the
// AVX-512 kernels: within 3e-7 relative of float64 (measured 2.3e-7) for
// GELU wherever |x| <= 12 and the value is a normal float32, and for GELU'
// wherever |GELU'| > 0.1 or x < -1.5 (near its zero at x = -0.75 the two
// terms of Phi + x phi cancel and the error is absolute, < 4e-8); the
// table-based Go kernel is within 2.5e-7 for |x| <= 5 and 1e-5 out to 8;
// below -8 it evaluates float64 erfc (0 below -13, as the vector kernel).
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
	forPaths(t, func(t *testing.T, path Path) {
		for _, pmin := range []int{1 << 30, 1} {
			withParallelMin(t, pmin)
			y := make([]float32, n)
			dx := make([]float32, n)
			GELU(y, x)
			GELUBackward(dx, dy, x)
			maxAbs, maxRel, maxGrad, maxGradRel := 0.0, 0.0, 0.0, 0.0
			for i, v := range x {
				want := geluRef(float64(v))
				d := math.Abs(float64(y[i]) - want)
				// Bound: 2.5e-7 relative, or 1e-7*|x| absolute (float32
				// rounding of Phi near 1 is 6e-8, times |x|).
				tol := 2.5e-7*math.Abs(want) + 1e-7*math.Abs(float64(v)) + 1e-14
				if d > tol {
					t.Fatalf("GELU(%g) = %g, want %g (diff %.3g > %.3g)", v, y[i], want, d, tol)
				}
				maxAbs = math.Max(maxAbs, d)
				lim := 8.0
				if path == PathAVX512 {
					lim = 12
				}
				if math.Abs(want) > 1e-37 && math.Abs(float64(v)) <= lim { // normal floats only
					maxRel = math.Max(maxRel, d/math.Abs(want))
				}
				gr := geluGradRef(float64(v))
				g := float64(dy[i]) * gr
				dg := math.Abs(float64(dx[i]) - g)
				if dg > 3e-7*math.Abs(float64(dy[i]))*(1+math.Abs(float64(v))) {
					t.Fatalf("GELU'(%g)*%g = %g, want %g", v, dy[i], dx[i], g)
				}
				maxGrad = math.Max(maxGrad, dg)
				// GELU' = Phi + x phi crosses 0 at x = -0.75 by cancellation
				// of two terms near 0.2, so near it the error is absolute.
				if (math.Abs(gr) > 0.1 || v < -1.5) && math.Abs(g) > 1e-37 && math.Abs(float64(v)) <= lim {
					maxGradRel = math.Max(maxGradRel, dg/math.Abs(g))
				}
			}
			t.Logf("parallelMin %d: GELU max abs %.3g, max rel %.3g (|x| <= %g); GELU' max abs %.3g, max rel %.3g",
				pmin, maxAbs, maxRel, map[Path]float64{PathGeneric: 8, PathAVX512: 12}[path], maxGrad, maxGradRel)
			if path == PathAVX512 && (maxRel > 3e-7 || maxGradRel > 3e-7) {
				t.Fatalf("AVX-512 GELU relative error %.3g, GELU' %.3g: want <= 3e-7", maxRel, maxGradRel)
			}
			if path == PathGeneric {
				if g := GELUValue(x[n/3]); g != y[n/3] {
					t.Fatalf("GELUValue(%g) = %g, slice kernel %g", x[n/3], g, y[n/3])
				}
			}
		}
	})
}

// TestGELUSpecial: NaN propagates, +Inf passes through, GELU saturates to
// x and ~0 far from 0 (exactly 0 past |x| = 13 on both paths).
func TestGELUSpecial(t *testing.T) {
	nan := float32(math.NaN())
	if g := GELUValue(nan); !math.IsNaN(float64(g)) {
		t.Fatalf("GELU(NaN) = %g", g)
	}
	if g := GELUValue(float32(math.Inf(1))); !math.IsInf(float64(g), 1) {
		t.Fatalf("GELU(+Inf) = %g", g)
	}
	forPaths(t, func(t *testing.T, path Path) {
		y := []float32{0}
		GELU(y, []float32{nan})
		dx := []float32{0}
		GELUBackward(dx, []float32{1}, []float32{nan})
		if !math.IsNaN(float64(y[0])) || !math.IsNaN(float64(dx[0])) {
			t.Fatalf("GELU(NaN) = %g, GELU'(NaN) = %g", y[0], dx[0])
		}
		for _, v := range []float32{8.5, 9.5, 13.5, 100, 3e38, float32(math.Inf(1))} {
			tiny := float64(0) // the true values below -8.5 are below 1e-15
			if v < 13 {
				tiny = 1e-15
			}
			g := []float32{0, 0}
			GELU(g, []float32{v, -v})
			if g[0] != v {
				t.Fatalf("GELU(%g) = %g, want %g", v, g[0], v)
			}
			if math.Abs(float64(g[1])) > tiny && !math.IsInf(float64(v), 0) { // -Inf*0: NaN, as PyTorch
				t.Fatalf("GELU(%g) = %g, want 0", -v, g[1])
			}
			d := []float32{0, 0}
			GELUBackward(d, []float32{1, 1}, []float32{v, -v})
			if d[0] != 1 || math.Abs(float64(d[1])) > tiny {
				t.Fatalf("GELU'(+-%g) = %g, %g, want 1, 0", v, d[0], d[1])
			}
		}
	})
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
