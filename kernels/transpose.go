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
	if vec() && uk.transpose16 && rows >= 16 && cols >= 16 {
		// Whole 16 x 16 blocks through the register transpose (four
		// shuffle stages, the GEMM's B packing): the gather kernel below
		// takes ~16 cycles per 16 values on AMD's cores, where the
		// shuffles take ~4. The scale follows as one vector pass per row
		// of dst (the same multiply, so the same bits); the edges go
		// through the general path.
		r16, c16 := rows&^15, cols&^15
		for i0 := 0; i0 < r16; i0 += 16 {
			transpose16(c16, &src[i0*lds], lds, &dst[i0], ldd)
		}
		if s != 1 {
			for j := 0; j < c16; j++ {
				d := dst[j*ldd : j*ldd+r16]
				scaleSerial(d, s, d)
			}
		}
		if r16 < rows {
			TransposeScale(dst[r16:], ldd, src[r16*lds:], lds, rows-r16, c16, s)
		}
		if c16 < cols {
			TransposeScale(dst[c16*ldd:], ldd, src[c16:], lds, rows, cols-c16, s)
		}
		return
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
