package kernels

import (
	"fmt"
	"testing"
)

// TestTransposeScale checks the scaled transpose on both paths over shapes
// with full and partial 16-row groups and 16-column blocks (the register
// transpose's blocks and both of its edges).
func TestTransposeScale(t *testing.T) {
	forPaths(t, func(t *testing.T, _ Path) {
		for _, sh := range [][3]int{{1, 1, 1}, {3, 5, 7}, {16, 32, 96}, {49, 32, 192}, {197, 64, 576}, {17, 3, 3}, {37, 40, 50}, {16, 16, 16}, {200, 23, 64}} {
			rows, cols, lds := sh[0], sh[1], sh[2]
			t.Run(fmt.Sprintf("%dx%d", rows, cols), func(t *testing.T) {
				src := randSlice(rows*lds, 1)
				ldd := rows + 3
				dst := make([]float32, cols*ldd)
				for i := range dst {
					dst[i] = 7
				}
				TransposeScale(dst, ldd, src, lds, rows, cols, 0.5)
				for j := 0; j < cols; j++ {
					for i := 0; i < ldd; i++ {
						want := float32(7)
						if i < rows {
							want = 0.5 * src[i*lds+j]
						}
						if dst[j*ldd+i] != want {
							t.Fatalf("dst[%d,%d] = %g, want %g", j, i, dst[j*ldd+i], want)
						}
					}
				}
			})
		}
	})
}
