package kernels

import (
	"fmt"
	"testing"
)

// TestLayerNormMix checks PRepBN's fused kernels against the unfused
// composition on both paths: the forward is bit-identical to
// LayerNormForward + AffineCols2 + Axpby; the column sums are bit-identical
// to their definitions; the backward and the residual-adding LayerNorm
// backward agree with the separate passes to float32 rounding, including
// when dx aliases res.
func TestLayerNormMix(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		for _, sh := range [][2]int{{1, 1}, {3, 17}, {7, 64}, {130, 64}, {33, 100}, {200, 192}} {
			rows, c := sh[0], sh[1]
			t.Run(fmt.Sprintf("%dx%d", rows, c), func(t *testing.T) {
				withParallelMin(t, 64)
				x, dy, res := randSlice(rows*c, 1), randSlice(rows*c, 2), randSlice(rows*c, 3)
				for i := range x {
					x[i] = 0.5 + 2*x[i]
				}
				w, b, g, mu, beta := randSlice(c, 4), randSlice(c, 5), randSlice(c, 6), randSlice(c, 7), randSlice(c, 8)
				k1, k2, k3 := randSlice(c, 9), randSlice(c, 10), randSlice(c, 11)
				const eps, lam, skip = 1e-6, float32(0.3), float32(0.8)
				oml := 1 - lam

				// Forward.
				y := make([]float32, rows*c)
				mean, rstd := make([]float32, rows), make([]float32, rows)
				LayerNormMixForward(y, mean, rstd, x, w, b, rows, c, eps, lam, oml, skip, g, mu, beta)
				y1, y2, want := make([]float32, rows*c), make([]float32, rows*c), make([]float32, rows*c)
				m1, r1 := make([]float32, rows), make([]float32, rows)
				LayerNormForward(y1, m1, r1, x, w, b, rows, c, eps)
				a := make([]float32, c)
				for j := range a {
					a[j] = skip
				}
				AffineCols2(y2, x, a, x, g, mu, beta, rows, c)
				Axpby(want, lam, y1, oml, y2)
				for i := range y {
					if y[i] != want[i] {
						t.Fatalf("forward differs at %d: fused %g, three passes %g", i, y[i], want[i])
					}
				}
				for r := range mean {
					if mean[r] != m1[r] || rstd[r] != r1[r] {
						t.Fatalf("statistics of row %d differ", r)
					}
				}

				// Column sums.
				sdy, sdyc, sdyh := make([]float32, c), make([]float32, c), make([]float32, c)
				LayerNormBatchNormSums(sdy, sdyc, sdyh, dy, x, mu, mean, rstd, rows, c)
				for j := 0; j < c; j++ {
					var a0, b0, h0 float32
					for r := 0; r < rows; r++ {
						d, v := dy[r*c+j], x[r*c+j]
						a0 += d
						b0 += d * (v - mu[j])
						h0 += d * ((v - mean[r]) * rstd[r])
					}
					if sdy[j] != a0 || sdyc[j] != b0 || sdyh[j] != h0 {
						t.Fatalf("column sums of %d: %g %g %g, want %g %g %g", j, sdy[j], sdyc[j], sdyh[j], a0, b0, h0)
					}
				}

				// Backward, against the separate passes in float64.
				lnDx := make([]float32, rows*c)
				LayerNormBackward(lnDx, nil, nil, dy, x, mean, rstd, w, rows, c)
				for _, withRes := range []bool{false, true} {
					wantDx := make([]float64, rows*c)
					for r := 0; r < rows; r++ {
						for j := 0; j < c; j++ {
							i := r*c + j
							v := float64(lam)*float64(lnDx[i]) + float64(k1[j])*float64(dy[i]) +
								float64(k2[j])*(float64(x[i])-float64(mu[j])) + float64(k3[j])
							if withRes {
								v += float64(res[i])
							}
							wantDx[i] = v
						}
					}
					dx := make([]float32, rows*c)
					var rs []float32
					if withRes {
						rs = res
					}
					LayerNormMixBackward(dx, dy, x, mean, rstd, w, lam, k1, k2, mu, k3, rs, rows, c)
					checkClose(t, "mix backward", dx, wantDx, 1e-5, 1e-5)
					if withRes {
						alias := append([]float32(nil), res...)
						LayerNormMixBackward(alias, dy, x, mean, rstd, w, lam, k1, k2, mu, k3, alias, rows, c)
						checkClose(t, "mix backward (dx = res)", alias, wantDx, 1e-5, 1e-5)
					}
				}

				// LayerNorm backward with the residual added.
				wantRes := make([]float64, rows*c)
				for i := range wantRes {
					wantRes[i] = float64(lnDx[i]) + float64(res[i])
				}
				dw1, db1 := make([]float32, c), make([]float32, c)
				dxr := append([]float32(nil), res...)
				LayerNormBackwardRes(dxr, dw1, db1, dy, x, mean, rstd, w, dxr, rows, c)
				checkClose(t, "LayerNormBackwardRes", dxr, wantRes, 1e-6, 1e-6)
				dw2, db2 := make([]float32, c), make([]float32, c)
				LayerNormBackward(make([]float32, rows*c), dw2, db2, dy, x, mean, rstd, w, rows, c)
				for j := range dw1 {
					if dw1[j] != dw2[j] || db1[j] != db2[j] {
						t.Fatalf("parameter gradients differ with res at %d", j)
					}
				}

				// AffineCols2Res equals AffineCols2 then an add, bit for bit,
				// also in place over res.
				want2 := make([]float32, rows*c)
				AffineCols2(want2, dy, k1, x, k2, mu, k3, rows, c)
				Add(want2, want2, res)
				got2 := append([]float32(nil), res...)
				AffineCols2Res(got2, dy, k1, x, k2, mu, k3, got2, rows, c)
				for i := range got2 {
					if got2[i] != want2[i] {
						t.Fatalf("AffineCols2Res differs at %d: %g vs %g", i, got2[i], want2[i])
					}
				}
			})
		}
	})
}
