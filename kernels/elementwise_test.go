package kernels

import (
	"fmt"
	"math"
	"testing"
)

// TestElementwise checks every elementwise kernel against a float64 loop on
// odd sizes, with the parallel path forced on and off.
func TestElementwise(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		for _, n := range []int{1, 3, 17, 1000, 70001} {
			for _, pmin := range []int{1 << 30, 16} {
				t.Run(fmt.Sprintf("n%d_pmin%d", n, pmin), func(t *testing.T) {
					withParallelMin(t, pmin)
					a, b := randSlice(n, 1), randSlice(n, 2)
					dst := make([]float32, n)
					want := make([]float64, n)

					Add(dst, a, b)
					for i := range want {
						want[i] = float64(a[i]) + float64(b[i])
					}
					checkClose(t, "Add", dst, want, 1e-7, 0)

					Mul(dst, a, b)
					for i := range want {
						want[i] = float64(a[i]) * float64(b[i])
					}
					checkClose(t, "Mul", dst, want, 1e-7, 0)

					Scale(dst, 0.3, a)
					for i := range want {
						want[i] = 0.3 * float64(a[i])
					}
					checkClose(t, "Scale", dst, want, 1e-6, 0)

					copy(dst, b)
					Axpy(dst, -1.5, a)
					for i := range want {
						want[i] = float64(b[i]) - 1.5*float64(a[i])
					}
					checkClose(t, "Axpy", dst, want, 1e-6, 1e-6)

					copy(dst, b)
					AddTo(dst, a)
					for i := range want {
						want[i] = float64(b[i]) + float64(a[i])
					}
					checkClose(t, "AddTo", dst, want, 1e-7, 1e-6)

					Axpby(dst, 0.25, a, 0.75, b)
					for i := range want {
						want[i] = 0.25*float64(a[i]) + 0.75*float64(b[i])
					}
					checkClose(t, "Axpby", dst, want, 1e-6, 1e-6)

					if got, w := Sum(a), sum64(a); math.Abs(got-w) > 1e-9*float64(n) {
						t.Fatalf("Sum = %g, want %g", got, w)
					}
					var d float64
					for i := range a {
						d += float64(a[i]) * float64(b[i])
					}
					if got := Dot(a, b); math.Abs(got-d) > 1e-6*float64(n) {
						t.Fatalf("Dot = %g, want %g", got, d)
					}
				})
			}
		}
	})
}

func sum64(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}

// TestColumnKernels covers the per-channel kernels (BatchNorm's statistics,
// affine map and backward pieces, bias gradients) on rows x c shapes with
// odd sizes and column counts around the 16-column parallel block.
func TestColumnKernels(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		shapes := [][2]int{{1, 1}, {3, 3}, {17, 17}, {197, 64}, {197, 192}, {50, 33}, {400, 250}}
		for _, sh := range shapes {
			for _, pmin := range []int{1 << 30, 16} {
				rows, c := sh[0], sh[1]
				t.Run(fmt.Sprintf("%dx%d_pmin%d", rows, c, pmin), func(t *testing.T) {
					withParallelMin(t, pmin)
					x, y := randSlice(rows*c, 3), randSlice(rows*c, 4)
					for i := range x {
						x[i] = 3 + 0.5*x[i] // offset mean: variance must not cancel
					}
					a, b, d := randSlice(c, 5), randSlice(c, 6), randSlice(c, 7)

					mean, vr := make([]float32, c), make([]float32, c)
					ColMeanVar(mean, vr, x, rows, c)
					wm, wv := make([]float64, c), make([]float64, c)
					for j := 0; j < c; j++ {
						for r := 0; r < rows; r++ {
							wm[j] += float64(x[r*c+j])
						}
						wm[j] /= float64(rows)
						for r := 0; r < rows; r++ {
							e := float64(x[r*c+j]) - wm[j]
							wv[j] += e * e
						}
						wv[j] /= float64(rows)
					}
					checkClose(t, "mean", mean, wm, 1e-6, 1e-7)
					checkClose(t, "var", vr, wv, 1e-5, 1e-7)

					sx, sxy := make([]float32, c), make([]float32, c)
					for j := range sx {
						sx[j], sxy[j] = 9, 9 // ColSumsDot overwrites
					}
					ColSumsDot(sx, sxy, y, x, mean, rows, c)
					ws, wsxy := make([]float64, c), make([]float64, c)
					for r := 0; r < rows; r++ {
						for j := 0; j < c; j++ {
							ws[j] += float64(y[r*c+j])
							wsxy[j] += float64(y[r*c+j]) * (float64(x[r*c+j]) - float64(mean[j]))
						}
					}
					checkClose(t, "ColSumsDot.sx", sx, ws, 1e-4, 1e-4)
					checkClose(t, "ColSumsDot.sxy", sxy, wsxy, 1e-4, 1e-4)

					cs := make([]float32, c)
					for j := range cs {
						cs[j] = 1 // ColSums accumulates
					}
					ColSums(cs, y, rows, c)
					for j := range ws {
						ws[j]++
					}
					checkClose(t, "ColSums", cs, ws, 1e-4, 1e-4)

					out := make([]float32, rows*c)
					want := make([]float64, rows*c)
					AffineCols(out, x, a, b, rows, c)
					for r := 0; r < rows; r++ {
						for j := 0; j < c; j++ {
							want[r*c+j] = float64(a[j])*float64(x[r*c+j]) + float64(b[j])
						}
					}
					checkClose(t, "AffineCols", out, want, 1e-6, 1e-6)
					AffineCols(out, x, a, nil, rows, c)
					for r := 0; r < rows; r++ {
						for j := 0; j < c; j++ {
							want[r*c+j] = float64(a[j]) * float64(x[r*c+j])
						}
					}
					checkClose(t, "AffineCols(nil b)", out, want, 1e-6, 1e-6)
					for _, m := range [][]float32{nil, mean} {
						AffineCols2(out, x, a, y, b, m, d, rows, c)
						for r := 0; r < rows; r++ {
							for j := 0; j < c; j++ {
								mj := 0.0
								if m != nil {
									mj = float64(m[j])
								}
								want[r*c+j] = float64(a[j])*float64(x[r*c+j]) + float64(b[j])*(float64(y[r*c+j])-mj) + float64(d[j])
							}
						}
						checkClose(t, "AffineCols2", out, want, 1e-6, 1e-5)
					}
					AddRowVec(out, x, d, rows, c)
					for r := 0; r < rows; r++ {
						for j := 0; j < c; j++ {
							want[r*c+j] = float64(x[r*c+j]) + float64(d[j])
						}
					}
					checkClose(t, "AddRowVec", out, want, 1e-7, 1e-7)

					mx := make([]float32, rows)
					RowMax(mx, y, rows, c)
					for r := 0; r < rows; r++ {
						m := float32(math.Inf(-1))
						for j := 0; j < c; j++ {
							m = max(m, y[r*c+j])
						}
						if mx[r] != m {
							t.Fatalf("RowMax[%d] = %g, want %g", r, mx[r], m)
						}
					}
				})
			}
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x, y := randSlice(rows*c, 1), randSlice(rows*c, 2)
		// read x, y, write y
		return int64(12 * len(x)), func() { AddTo(y, x) }
	})
}

func BenchmarkColSums(b *testing.B) {
	benchShapesThreads(b, func(rows, c int) (int64, func()) {
		x, d := randSlice(rows*c, 1), make([]float32, c)
		return int64(4 * len(x)), func() { ColSums(d, x, rows, c) }
	})
}

// TestColMeanVarLargeMean mixes channels whose mean is tiny, moderate and
// 1e6 times their spread (the second-pass fallback) in one matrix.
func TestColMeanVarLargeMean(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		for _, pmin := range []int{1 << 30, 16} {
			withParallelMin(t, pmin)
			rows, c := 300, 40
			x := randSlice(rows*c, 9)
			for r := 0; r < rows; r++ {
				for j := 0; j < c; j++ {
					switch j % 3 {
					case 1:
						x[r*c+j] = 5 + x[r*c+j]
					case 2:
						x[r*c+j] = 1e4 + 0.01*x[r*c+j]
					}
				}
			}
			mean, vr := make([]float32, c), make([]float32, c)
			ColMeanVar(mean, vr, x, rows, c)
			wm, wv := make([]float64, c), make([]float64, c)
			for j := 0; j < c; j++ {
				for r := 0; r < rows; r++ {
					wm[j] += float64(x[r*c+j])
				}
				wm[j] /= float64(rows)
				for r := 0; r < rows; r++ {
					d := float64(x[r*c+j]) - wm[j]
					wv[j] += d * d
				}
				wv[j] /= float64(rows)
			}
			checkClose(t, "mean", mean, wm, 1e-6, 0)
			// Relative to each channel's own variance, not to the largest.
			checkClose(t, "var", vr, wv, 1e-5, 0)
		}
	})
}
