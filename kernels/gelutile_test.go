package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// TestGELUTile: the epilogue's GELU over a strided tile (one kernel call
// for all rows) gives the bits of the contiguous GELU applied row by row,
// for every tail width, and leaves the elements around the tile alone.
func TestGELUTile(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, cols := range []int{1, 7, 15, 16, 17, 31, 32, 33, 48, 64, 70} {
		for _, rows := range []int{1, 3, 12, 13} {
			ldc := cols + 5
			c := make([]float32, (rows+2)*ldc)
			for i := range c {
				c[i] = float32(rng.NormFloat64() * 4)
			}
			if cols > 3 {
				c[ldc+1], c[ldc+2], c[ldc+3] = float32(math.Inf(-1)), 20, -14 // saturated lanes
			}
			want := append([]float32(nil), c...)
			i0, i1, j0, j1 := 1, 1+rows, 2, 2+cols
			if j1 > ldc {
				j1 = ldc
			}
			for i := i0; i < i1; i++ {
				row := want[i*ldc+j0 : i*ldc+j1]
				geluSerial(row, row)
			}
			geluTile(c, ldc, i0, i1, j0, j1)
			if i, ok := bitsEqual(c, want); !ok {
				t.Fatalf("%dx%d tile (ld %d): element %d: %g, row-wise %g", rows, j1-j0, ldc, i, c[i], want[i])
			}
		}
	}
}
