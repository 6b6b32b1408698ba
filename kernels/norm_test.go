package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// benchShapes are ViT-Tiny activations: one image (197 tokens x 192) and a
// batch of 32 (6304 x 192); the GELU/fc1 widths are 4x.
var benchShapes = []struct {
	name    string
	rows, c int
}{
	{"197x192", 197, 192},
	{"6304x192", 6304, 192},
	{"197x768", 197, 768},
	{"6304x768", 6304, 768},
}

func randSlice(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// checkClose fails on the first element with |got-want| > atol+rtol|want|
// and logs the max abs/rel diff.
func checkClose(t *testing.T, name string, got []float32, want []float64, rtol, atol float64) {
	t.Helper()
	maxAbs, maxRel := 0.0, 0.0
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		maxAbs = math.Max(maxAbs, d)
		if want[i] != 0 {
			maxRel = math.Max(maxRel, d/math.Abs(want[i]))
		}
		if !(d <= atol+rtol*math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %g, want %g", name, i, got[i], want[i])
		}
	}
	t.Logf("%s: max abs %.3g, max rel %.3g", name, maxAbs, maxRel)
}

type normCase struct {
	rows, c int
	shift   float32 // added to x: LayerNorm must stay exact when |mean| >> std
	affine  bool
}

var normCases = []normCase{
	{1, 1, 0, true}, {1, 3, 0, true}, {3, 17, 0, true}, {17, 64, 0, false},
	{197, 192, 0, true}, {197, 192, 100, true}, {33, 3, 0, false}, {300, 240, 0, true},
}

func TestLayerNorm(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		for _, tc := range normCases {
			for _, pmin := range []int{1 << 30, 64} {
				t.Run(fmt.Sprintf("%dx%d_shift%g_affine%v_pmin%d", tc.rows, tc.c, tc.shift, tc.affine, pmin), func(t *testing.T) {
					withParallelMin(t, pmin)
					rows, c := tc.rows, tc.c
					x := randSlice(rows*c, 1)
					for i := range x {
						x[i] += tc.shift
					}
					dy := randSlice(rows*c, 2)
					var w, b []float32
					if tc.affine {
						w, b = randSlice(c, 3), randSlice(c, 4)
					}
					const eps = 1e-6
					y := make([]float32, rows*c)
					mean, rstd := make([]float32, rows), make([]float32, rows)
					LayerNormForward(y, mean, rstd, x, w, b, rows, c, eps)
					dx := make([]float32, rows*c)
					dw, db := make([]float32, c), make([]float32, c)
					for i := range dw {
						dw[i], db[i] = 0.5, -0.5 // accumulation, not overwrite
					}
					LayerNormBackward(dx, dw, db, dy, x, mean, rstd, w, rows, c)

					wantY := make([]float64, rows*c)
					wantDx := make([]float64, rows*c)
					wantDw, wantDb := make([]float64, c), make([]float64, c)
					for j := range wantDw {
						wantDw[j], wantDb[j] = 0.5, -0.5
					}
					for r := 0; r < rows; r++ {
						var m, v float64
						for j := 0; j < c; j++ {
							m += float64(x[r*c+j])
						}
						m /= float64(c)
						for j := 0; j < c; j++ {
							d := float64(x[r*c+j]) - m
							v += d * d
						}
						v /= float64(c)
						rs := 1 / math.Sqrt(v+eps)
						var s1, s2 float64
						xh := make([]float64, c)
						g := make([]float64, c)
						for j := 0; j < c; j++ {
							xh[j] = (float64(x[r*c+j]) - m) * rs
							wj, bj := 1.0, 0.0
							if w != nil {
								wj, bj = float64(w[j]), float64(b[j])
							}
							wantY[r*c+j] = xh[j]*wj + bj
							g[j] = float64(dy[r*c+j]) * wj
							s1 += g[j]
							s2 += g[j] * xh[j]
							wantDw[j] += float64(dy[r*c+j]) * xh[j]
							wantDb[j] += float64(dy[r*c+j])
						}
						for j := 0; j < c; j++ {
							wantDx[r*c+j] = rs * (g[j] - s1/float64(c) - xh[j]*s2/float64(c))
						}
					}
					// A shifted input loses log2(shift) bits of x itself in
					// float32; the tolerance grows with the float32 ulp of x.
					sh := 1e-6 * float64(tc.shift)
					checkClose(t, "y", y, wantY, 1e-4, 1e-5+sh)
					checkClose(t, "dx", dx, wantDx, 1e-3, 1e-4+10*sh)
					checkClose(t, "dw", dw, wantDw, 1e-4, 1e-4+float64(rows)*sh)
					checkClose(t, "db", db, wantDb, 1e-4, 1e-4)
				})
			}
		}
	})
}

func TestRMSNorm(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		for _, tc := range normCases {
			for _, pmin := range []int{1 << 30, 64} {
				t.Run(fmt.Sprintf("%dx%d_affine%v_pmin%d", tc.rows, tc.c, tc.affine, pmin), func(t *testing.T) {
					withParallelMin(t, pmin)
					rows, c := tc.rows, tc.c
					x := randSlice(rows*c, 5)
					dy := randSlice(rows*c, 6)
					var w []float32
					if tc.affine {
						w = randSlice(c, 7)
					}
					const eps = 1e-6
					y, rr := make([]float32, rows*c), make([]float32, rows)
					RMSNormForward(y, rr, x, w, rows, c, eps)
					dx, dw := make([]float32, rows*c), make([]float32, c)
					RMSNormBackward(dx, dw, dy, x, rr, w, rows, c)
					wantY, wantDx, wantDw := make([]float64, rows*c), make([]float64, rows*c), make([]float64, c)
					for r := 0; r < rows; r++ {
						var ss float64
						for j := 0; j < c; j++ {
							ss += float64(x[r*c+j]) * float64(x[r*c+j])
						}
						rs := 1 / math.Sqrt(ss/float64(c)+eps)
						var s float64
						for j := 0; j < c; j++ {
							wj := 1.0
							if w != nil {
								wj = float64(w[j])
							}
							xh := float64(x[r*c+j]) * rs
							wantY[r*c+j] = xh * wj
							s += float64(dy[r*c+j]) * wj * xh
							wantDw[j] += float64(dy[r*c+j]) * xh
						}
						for j := 0; j < c; j++ {
							wj := 1.0
							if w != nil {
								wj = float64(w[j])
							}
							xh := float64(x[r*c+j]) * rs
							wantDx[r*c+j] = rs * (float64(dy[r*c+j])*wj - xh*s/float64(c))
						}
					}
					checkClose(t, "y", y, wantY, 1e-4, 1e-5)
					checkClose(t, "dx", dx, wantDx, 1e-3, 1e-4)
					if w != nil {
						checkClose(t, "dw", dw, wantDw, 1e-4, 1e-4)
					}
				})
			}
		}
	})
}

// TestNormAlias checks the documented in-place forms (y = x, dx = dy).
func TestNormAlias(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		rows, c := 5, 33
		x := randSlice(rows*c, 8)
		w, b := randSlice(c, 9), randSlice(c, 10)
		y := make([]float32, rows*c)
		m, rs := make([]float32, rows), make([]float32, rows)
		LayerNormForward(y, m, rs, x, w, b, rows, c, 1e-5)
		xi := append([]float32(nil), x...)
		LayerNormForward(xi, nil, nil, xi, w, b, rows, c, 1e-5)
		for i := range y {
			if y[i] != xi[i] {
				t.Fatalf("in-place LayerNorm differs at %d: %g vs %g", i, xi[i], y[i])
			}
		}
		dy := randSlice(rows*c, 11)
		dx := make([]float32, rows*c)
		dw1, db1 := make([]float32, c), make([]float32, c)
		LayerNormBackward(dx, dw1, db1, dy, x, m, rs, w, rows, c)
		dyi := append([]float32(nil), dy...)
		dw2, db2 := make([]float32, c), make([]float32, c)
		LayerNormBackward(dyi, dw2, db2, dyi, x, m, rs, w, rows, c)
		for i := range dx {
			if dx[i] != dyi[i] {
				t.Fatalf("in-place LayerNormBackward differs at %d", i)
			}
		}
		for j := range dw1 {
			if dw1[j] != dw2[j] || db1[j] != db2[j] {
				t.Fatalf("in-place LayerNormBackward dw/db differ at %d", j)
			}
		}
	})
}

// benchShapesThreads runs body (which returns the bytes moved per call and
// the call) for every bench shape on 1 and 2 threads, reporting GB/s via
// SetBytes: sub-benchmark names are SHAPE/tN.
func benchShapesThreads(b *testing.B, body func(rows, c int) (int64, func())) {
	for _, s := range benchShapes {
		bytes, f := body(s.rows, s.c)
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", s.name, th), func(b *testing.B) {
				prev := Threads()
				SetThreads(th)
				defer SetThreads(prev)
				b.SetBytes(bytes)
				for b.Loop() {
					f()
				}
			})
		}
	}
}

func BenchmarkLayerNorm(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x := randSlice(rows*c, 1)
		w, bb := randSlice(c, 2), randSlice(c, 3)
		y := make([]float32, len(x))
		m, rs := make([]float32, rows), make([]float32, rows)
		// read x, write y
		return int64(8 * len(x)), func() { LayerNormForward(y, m, rs, x, w, bb, rows, c, 1e-6) }
	})
}

func BenchmarkLayerNormBackward(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x, dy := randSlice(rows*c, 1), randSlice(rows*c, 4)
		w, bb := randSlice(c, 2), randSlice(c, 3)
		y, dx := make([]float32, len(x)), make([]float32, len(x))
		m, rs := make([]float32, rows), make([]float32, rows)
		dw, db := make([]float32, c), make([]float32, c)
		LayerNormForward(y, m, rs, x, w, bb, rows, c, 1e-6)
		// read x, dy, write dx (the dw/db pass re-reads x and dy)
		return int64(12 * len(x)), func() { LayerNormBackward(dx, dw, db, dy, x, m, rs, w, rows, c) }
	})
}

func BenchmarkRMSNorm(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x, w := randSlice(rows*c, 1), randSlice(c, 2)
		y, rr := make([]float32, rows*c), make([]float32, rows)
		return int64(8 * len(x)), func() { RMSNormForward(y, rr, x, w, rows, c, 1e-6) }
	})
}

// BenchmarkBatchNormTrain is the training forward of BatchNorm/RepBN: batch
// statistics (two passes) then the per-channel affine map.
func BenchmarkBatchNormTrain(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x := randSlice(rows*c, 1)
		y := make([]float32, len(x))
		m, v := make([]float32, c), make([]float32, c)
		return int64(8 * len(x)), func() {
			ColMeanVar(m, v, x, rows, c)
			AffineCols2(y, x, m, x, v, m, m, rows, c)
		}
	})
}

// BenchmarkBatchNormEval is the eval-mode BatchNorm/RepBN: one affine pass.
func BenchmarkBatchNormEval(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x := randSlice(rows*c, 1)
		y := make([]float32, len(x))
		a, d := randSlice(c, 2), randSlice(c, 3)
		return int64(8 * len(x)), func() { AffineCols(y, x, a, d, rows, c) }
	})
}

// TestThreadCountInvariance: every kernel here gives bit-identical results
// on 1 and 2 threads (rows or columns are split, never a sum), so a seed
// gives the same model whatever the core count.
func TestThreadCountInvariance(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		withParallelMin(t, 64)
		rows, c := 301, 197
		x, dy := randSlice(rows*c, 1), randSlice(rows*c, 2)
		w, b := randSlice(c, 3), randSlice(c, 4)
		run := func(threads int) [][]float32 {
			prev := Threads()
			SetThreads(threads)
			defer SetThreads(prev)
			y, m, rs := make([]float32, rows*c), make([]float32, rows), make([]float32, rows)
			LayerNormForward(y, m, rs, x, w, b, rows, c, 1e-6)
			dx, dw, db := make([]float32, rows*c), make([]float32, c), make([]float32, c)
			LayerNormBackward(dx, dw, db, dy, x, m, rs, w, rows, c)
			ry, rr := make([]float32, rows*c), make([]float32, rows)
			RMSNormForward(ry, rr, x, w, rows, c, 1e-6)
			rdx, rdw := make([]float32, rows*c), make([]float32, c)
			RMSNormBackward(rdx, rdw, dy, x, rr, w, rows, c)
			mean, vr, sx, sxy, cs := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
			ColMeanVar(mean, vr, x, rows, c)
			ColSumsDot(sx, sxy, dy, x, mean, rows, c)
			ColSums(cs, dy, rows, c)
			g, gd := make([]float32, rows*c), make([]float32, rows*c)
			GELU(g, x)
			GELUBackward(gd, dy, x)
			return [][]float32{y, m, rs, dx, dw, db, ry, rr, rdx, rdw, mean, vr, sx, sxy, cs, g, gd}
		}
		one, two := run(1), run(2)
		for k := range one {
			for i := range one[k] {
				if one[k][i] != two[k][i] {
					t.Fatalf("output %d differs at %d: %g on 1 thread, %g on 2", k, i, one[k][i], two[k][i])
				}
			}
		}
	})
}
