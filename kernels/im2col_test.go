package kernels

import "testing"

func TestIm2ColPatches(t *testing.T) {
	for _, tc := range []struct{ c, h, w, p int }{{1, 4, 4, 2}, {3, 5, 7, 2}, {2, 6, 3, 3}, {3, 1, 1, 1}} {
		img := make([]float32, tc.c*tc.h*tc.w)
		for i := range img {
			img[i] = float32(i)
		}
		gh, gw := tc.h/tc.p, tc.w/tc.p
		kd := tc.c * tc.p * tc.p
		col := make([]float32, gh*gw*kd)
		Im2ColPatches(col, img, tc.c, tc.h, tc.w, tc.p, 0, gh)
		bad := 0
		for gy := 0; gy < gh; gy++ {
			for gx := 0; gx < gw; gx++ {
				for ch := 0; ch < tc.c; ch++ {
					for ky := 0; ky < tc.p; ky++ {
						for kx := 0; kx < tc.p; kx++ {
							want := img[(ch*tc.h+gy*tc.p+ky)*tc.w+gx*tc.p+kx]
							got := col[(gy*gw+gx)*kd+(ch*tc.p+ky)*tc.p+kx]
							if got != want {
								bad++
							}
						}
					}
				}
			}
		}
		if bad > 0 {
			t.Errorf("%v: %d misplaced values", tc, bad)
		}
	}
}
