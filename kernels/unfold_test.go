package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// unfoldCase is one convolution geometry: c channels, h x w input, kernel
// k, stride s, padding p.
type unfoldCase struct{ c, h, w, k, s, p int }

var unfoldCases = []unfoldCase{
	{1, 4, 4, 3, 1, 1}, {3, 9, 7, 7, 4, 2}, {2, 6, 6, 3, 2, 1}, {4, 8, 8, 2, 2, 0},
	{16, 5, 7, 3, 2, 1}, {17, 6, 5, 3, 1, 2}, {3, 2, 2, 3, 1, 1},
	{3, 21, 23, 7, 4, 2}, {2, 12, 13, 3, 2, 1}, {1, 9, 17, 8, 3, 0}, // interior block moves
}

// pix returns the input value read by tap (ky, kx) of output (oy, ox), or
// 0 in the padding.
func (u unfoldCase) pix(at func(ch, y, x int) float32, ch, oy, ox, ky, kx int) float32 {
	y, x := oy*u.s-u.p+ky, ox*u.s-u.p+kx
	if y < 0 || y >= u.h || x < 0 || x >= u.w {
		return 0
	}
	return at(ch, y, x)
}

// TestIm2Col checks both layouts against the definition, element by
// element, and that Col2Im/Col2ImCL are their exact adjoints:
// <Im2Col(x), g> = <x, Col2Im(g)> for random x and g (in float64).
func TestIm2Col(t *testing.T) {
	for i, u := range unfoldCases {
		t.Run(fmt.Sprint(u), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			oh, ow := ConvOutSize(u.h, u.k, u.s, u.p), ConvOutSize(u.w, u.k, u.s, u.p)
			kd := u.c * u.k * u.k
			img := make([]float32, u.c*u.h*u.w)
			for j := range img {
				img[j] = float32(rng.IntN(100))
			}
			const ld = 3 // channels-last rows are c+ld apart (a row stride wider than c)
			cl := make([]float32, u.h*u.w*(u.c+ld))
			for ch := 0; ch < u.c; ch++ {
				for y := 0; y < u.h; y++ {
					for x := 0; x < u.w; x++ {
						cl[(y*u.w+x)*(u.c+ld)+ch] = img[(ch*u.h+y)*u.w+x]
					}
				}
			}
			at := func(ch, y, x int) float32 { return img[(ch*u.h+y)*u.w+x] }
			col := make([]float32, oh*ow*kd)
			colCL := make([]float32, oh*ow*kd)
			// Two row ranges: callers split rows.
			Im2Col(col, img, u.c, u.h, u.w, u.k, u.s, u.p, 0, oh/2)
			Im2Col(col, img, u.c, u.h, u.w, u.k, u.s, u.p, oh/2, oh)
			Im2ColCL(colCL, cl, u.c+ld, u.c, u.h, u.w, u.k, u.s, u.p, 0, oh/2)
			Im2ColCL(colCL, cl, u.c+ld, u.c, u.h, u.w, u.k, u.s, u.p, oh/2, oh)
			// Dense rows (ld = c) take the whole-row copies.
			dense := make([]float32, u.h*u.w*u.c)
			for j := 0; j < u.h*u.w; j++ {
				copy(dense[j*u.c:(j+1)*u.c], cl[j*(u.c+ld):])
			}
			colDense := make([]float32, oh*ow*kd)
			Im2ColCL(colDense, dense, u.c, u.c, u.h, u.w, u.k, u.s, u.p, 0, oh)
			if j := slices.Compare(colDense, colCL); j != 0 {
				t.Fatalf("Im2ColCL with ld = c differs from ld > c")
			}
			bad := 0
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					r := (oy*ow + ox) * kd
					for ch := 0; ch < u.c; ch++ {
						for ky := 0; ky < u.k; ky++ {
							for kx := 0; kx < u.k; kx++ {
								want := u.pix(at, ch, oy, ox, ky, kx)
								if col[r+(ch*u.k+ky)*u.k+kx] != want || colCL[r+(ky*u.k+kx)*u.c+ch] != want {
									bad++
								}
							}
						}
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d misplaced values", bad)
			}
			// Adjoint: g random, <col, g> = <img, Col2Im(g)>. Integer
			// data keep every float32 sum exact.
			g := make([]float32, len(col))
			for j := range g {
				g[j] = float32(rng.IntN(7) - 3)
			}
			dx := make([]float32, len(img))
			Col2Im(dx, g, u.c, u.h, u.w, u.k, u.s, u.p, 0, u.h/2)
			Col2Im(dx, g, u.c, u.h, u.w, u.k, u.s, u.p, u.h/2, u.h)
			dxCL := make([]float32, len(cl))
			Col2ImCL(dxCL, u.c+ld, g, u.c, u.h, u.w, u.k, u.s, u.p, 0, u.h)
			var lhs, rhs, rhsCL float64
			for j := range col {
				lhs += float64(col[j]) * float64(g[j])
			}
			for j := range img {
				rhs += float64(img[j]) * float64(dx[j])
			}
			// The same g read in the (ky, kx, channel) order is the
			// gradient of colCL, whose entries are a permutation of col's.
			for j := range colCL {
				rhsCL -= float64(colCL[j]) * float64(g[j])
			}
			for j := range cl {
				rhsCL += float64(cl[j]) * float64(dxCL[j])
			}
			if lhs != rhs {
				t.Errorf("<Im2Col x, g> = %v, <x, Col2Im g> = %v", lhs, rhs)
			}
			if rhsCL != 0 {
				t.Errorf("channels-last: <x, Col2ImCL g> - <Im2ColCL x, g> = %v", rhsCL)
			}
		})
	}
}

// TestSpaceToDepth: Im2ColCL over the blocked map (kernel ceil(k/s),
// stride 1) holds, at block tap (dby, dbx) and block position (ch, y, x),
// the padded input pixel that tap (dby*s+y, dbx*s+x) of the original
// convolution reads (0 in the padding), for every output pixel.
func TestSpaceToDepth(t *testing.T) {
	for i, u := range []unfoldCase{{3, 21, 23, 7, 4, 2}, {2, 9, 7, 3, 2, 1}, {1, 8, 8, 4, 4, 0}, {2, 10, 9, 5, 3, 2},
		{1, 3, 3, 3, 4, 0}, {1, 3, 3, 5, 4, 1}, {2, 5, 6, 2, 2, 0}} {
		t.Run(fmt.Sprint(u), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			img := make([]float32, u.c*u.h*u.w)
			for j := range img {
				img[j] = float32(1 + rng.IntN(100))
			}
			at := func(ch, y, x int) float32 { return img[(ch*u.h+y)*u.w+x] }
			oh, ow := ConvOutSize(u.h, u.k, u.s, u.p), ConvOutSize(u.w, u.k, u.s, u.p)
			kb := (u.k + u.s - 1) / u.s
			gbh, gbw := oh+kb-1, ow+kb-1
			cb := u.c * u.s * u.s
			blk := make([]float32, gbh*gbw*cb)
			SpaceToDepth(blk, img, u.c, u.h, u.w, u.s, u.p, gbw, 0, gbh)
			kd := kb * kb * cb
			col := make([]float32, oh*ow*kd)
			Im2ColCL(col, blk, cb, cb, gbh, gbw, kb, 1, 0, 0, oh)
			bad := 0
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					for dby := 0; dby < kb; dby++ {
						for dbx := 0; dbx < kb; dbx++ {
							for ch := 0; ch < u.c; ch++ {
								for y := 0; y < u.s; y++ {
									for x := 0; x < u.s; x++ {
										ky, kx := dby*u.s+y, dbx*u.s+x
										got := col[(oy*ow+ox)*kd+(dby*kb+dbx)*cb+(ch*u.s+y)*u.s+x]
										py, px := oy*u.s-u.p+ky, ox*u.s-u.p+kx
										want := float32(0)
										if py >= 0 && py < u.h && px >= 0 && px < u.w {
											want = at(ch, py, px)
										}
										if got != want {
											bad++
										}
									}
								}
							}
						}
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%d misplaced values", bad)
			}
		})
	}
}
