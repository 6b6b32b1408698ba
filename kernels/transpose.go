package kernels

import "fmt"

// TransposeScale sets dst[j*ldd+i] = s*src[i*lds+j] for i < rows, j < cols:
// a scaled transpose of a rows x cols block (an attention head's K or V,
// row stride 3C, into the d x N layout its products read by rows). It
// walks 8 x 8 tiles so that both sides stay within a few cache lines (the
// AVX-512 kernel gathers 16 source rows per contiguous store instead).
// Serial; s = 1 copies exactly.
func TransposeScale(dst []float32, ldd int, src []float32, lds int, rows, cols int, s float32) {
	if rows <= 0 || cols <= 0 {
		return
	}
	if len(src) < (rows-1)*lds+cols || len(dst) < (cols-1)*ldd+rows {
		panic(fmt.Sprintf("kernels.TransposeScale: %dx%d block needs %d source and %d destination values, have %d and %d",
			rows, cols, (rows-1)*lds+cols, (cols-1)*ldd+rows, len(src), len(dst)))
	}
	if vec() && lds < 1<<26 {
		// Gather offsets are 32-bit element indices: 16*lds must fit.
		transposeScaleAVX512(&dst[0], ldd, &src[0], lds, rows, cols, s)
		return
	}
	const tile = 8
	for i0 := 0; i0 < rows; i0 += tile {
		i1 := min(i0+tile, rows)
		for j0 := 0; j0 < cols; j0 += tile {
			j1 := min(j0+tile, cols)
			for i := i0; i < i1; i++ {
				sr := src[i*lds+j0 : i*lds+j1]
				for j, v := range sr {
					dst[(j0+j)*ldd+i] = s * v
				}
			}
		}
	}
}
