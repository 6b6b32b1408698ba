package kernels

import (
	"fmt"
	"math"
	"testing"
)

// TestVectorMatchesGeneric: the kernels that only combine values (adds,
// scalings, affine maps, column sums and BatchNorm statistics, LayerNorm's
// parameter gradients, AdamW) perform the same float32 (float64 for the
// statistics) operations in the same order on the AVX-512 path as in Go,
// so the two give identical bits; shapes cover the 64-, 16-column and
// masked-tail blocks of the column kernels.
func TestVectorMatchesGeneric(t *testing.T) {
	if !supported(PathAVX512) {
		t.Skip("no AVX-512 on this CPU")
	}
	for _, sh := range [][2]int{{1, 1}, {3, 5}, {7, 16}, {5, 17}, {9, 64}, {33, 100}, {197, 192}, {64, 250}} {
		rows, c := sh[0], sh[1]
		t.Run(fmt.Sprintf("%dx%d", rows, c), func(t *testing.T) {
			withParallelMin(t, 64)
			x, y, z := randSlice(rows*c, 1), randSlice(rows*c, 2), randSlice(rows*c, 3)
			for i := range z {
				z[i] = 2 + z[i]
			}
			a, b, d, m := randSlice(c, 4), randSlice(c, 5), randSlice(c, 6), randSlice(c, 7)
			rm, rs := randSlice(rows, 8), randSlice(rows, 9)
			run := func() [][]float32 {
				n := rows * c
				var outs [][]float32
				o := func() []float32 { s := make([]float32, n); outs = append(outs, s); return s }
				oc := func(init float32) []float32 {
					s := make([]float32, c)
					for i := range s {
						s[i] = init
					}
					outs = append(outs, s)
					return s
				}
				Add(o(), x, y)
				Mul(o(), x, y)
				s := o()
				copy(s, y)
				Axpy(s, 0.7, x)
				Axpby(o(), 0.3, x, -1.7, y)
				Scale(o(), 1.3, x)
				AffineCols(o(), x, a, b, rows, c)
				AffineCols(o(), x, a, nil, rows, c)
				AffineCols2(o(), x, a, z, b, m, d, rows, c)
				AffineCols2(o(), x, a, z, b, nil, d, rows, c)
				AddRowVec(o(), x, d, rows, c)
				ColSums(oc(0.5), x, rows, c)
				ColSumsStrided(oc(0.5), x, rows, max(1, c-1), c)
				for _, bias := range [][]float32{nil, d} {
					for _, res := range [][]float32{nil, y} {
						e := o()
						copy(e, z)
						epilogueAdd(e[1:], c, rows-1, max(1, c-1), bias, res, c)
					}
				}
				ColSumsDot(oc(9), oc(9), x, z, m, rows, c)
				ColSumsDot(oc(9), oc(9), x, z, nil, rows, c)
				ColMeanVar(oc(0), oc(0), z, rows, c)
				dw, db := oc(0.25), oc(-0.25)
				runCols(func(j *job, lo, hi int) {
					layerNormParamGrad(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.r, j.c, lo, hi)
				}, rows, c, dw, db, y, x, rm, rs)
				w, g, mm, vv := o(), o(), o(), o()
				copy(w, x)
				copy(g, y)
				copy(mm, z)
				for i := range vv {
					vv[i] = z[i] * z[i]
				}
				AdamW(w, g, mm, vv, &AdamWStep{Decay: 0.9995, Beta1: 0.9, OneMinusB1: 1 - float32(0.9), Beta2: 0.999,
					OneMinusB2: 1 - float32(0.999), StepSize: 1e-3, InvSqrtBC2: 3.2, Eps: 1e-8})
				return outs
			}
			var gen, avx [][]float32
			forPaths(t, func(t *testing.T, p Path) {
				if p == PathGeneric {
					gen = run()
				} else {
					avx = run()
				}
			})
			for k := range gen {
				for i := range gen[k] {
					if math.Float32bits(gen[k][i]) != math.Float32bits(avx[k][i]) {
						t.Fatalf("output %d differs at %d: generic %g, AVX-512 %g", k, i, gen[k][i], avx[k][i])
					}
				}
			}
		})
	}
}

// TestSumSquares checks the float64 sum of squares on both paths.
func TestSumSquares(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 1000, 70001} {
			x := randSlice(n, 3)
			var want float64
			for _, v := range x {
				want += float64(v) * float64(v)
			}
			if got := SumSquares(x); math.Abs(got-want) > 1e-12*math.Max(want, 1) {
				t.Fatalf("n=%d: SumSquares = %.17g, want %.17g", n, got, want)
			}
		}
	})
}
