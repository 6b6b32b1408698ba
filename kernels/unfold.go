package kernels

// General 2-D convolution as im2col + GEMM (square kernel k, stride s, zero
// padding p, output (h+2p-k)/s+1 per side). Im2ColPatches is the
// non-overlapping special case (k = s, p = 0), a pure permutation; here
// patches overlap (a 7x7 stride-4 stem, 3x3 stride-2 merges) or reach into
// the padding, so every output pixel's row is gathered with zeros where
// the window leaves the input.
//
// Two input layouts, because the two kinds of caller hold different ones:
// channel-major images [c, h, w] (a network input), whose rows are ordered
// (channel, ky, kx) like a PyTorch weight [out, c, k, k]; and channels-last
// token maps [h*w, c] (row stride ld; the residual stream of a Transformer
// stage, position (y, x) at (y*w+x)*ld), whose rows are ordered (ky, kx,
// channel) so each tap is one contiguous copy of c values (the caller
// permutes the weight once instead of scattering every element of every
// row).
//
// The input gradient is the transposed operation (col2im). It is written
// as a gather per input row: each input pixel sums the dcol entries of the
// (output pixel, tap) pairs that read it, in ascending (ky, kx) order, so
// rows can be split across threads without atomics or per-thread buffers
// and the sums do not depend on the split (bit-identical results whatever
// the thread count).
//
// All functions are serial over a range of rows so callers can split the
// work and stay allocation-free.

// ConvOutSize returns the output length of a convolution with kernel k,
// stride s and padding p along an input of length n (0 when the kernel does
// not fit).
func ConvOutSize(n, k, s, p int) int {
	if n+2*p < k || s < 1 {
		return 0
	}
	return (n+2*p-k)/s + 1
}

// Im2Col writes the rows of output rows [oy0, oy1) of the convolution of
// the channel-major image img [c, h, w]: output pixel (oy, ox) becomes row
// oy*ow+ox of col (c*k*k values ordered channel, ky, kx; zeros outside the
// image).
func Im2Col(col, img []float32, c, h, w, k, s, p, oy0, oy1 int) {
	ow := ConvOutSize(w, k, s, p)
	kd := c * k * k
	for oy := oy0; oy < oy1; oy++ {
		for ox := 0; ox < ow; ox++ {
			row := col[(oy*ow+ox)*kd : (oy*ow+ox+1)*kd]
			ix0 := ox*s - p
			// Taps kx in [kxlo, kxhi) read inside the image. Segments are
			// a few values (7 for the CSwin stem), too short for copy's
			// call to pay: plain loops, no calls.
			kxlo, kxhi := max(0, -ix0), min(k, w-ix0)
			o := 0
			for ch := 0; ch < c; ch++ {
				for ky := 0; ky < k; ky++ {
					seg := row[o : o+k]
					o += k
					iy := oy*s - p + ky
					if iy < 0 || iy >= h || kxhi <= kxlo {
						for i := range seg {
							seg[i] = 0
						}
						continue
					}
					src := img[ch*h*w+iy*w : ch*h*w+iy*w+w]
					if kxlo == 0 && kxhi == k && k <= 8 && o+8 <= kd && ix0+8 <= w {
						// Whole segment inside the image: a fixed 8-value
						// move, one bounds check and no call (an array
						// copy compiles to a memmove call). The spill past
						// the segment lands in the row's next segment,
						// written after this one.
						d, v := row[o-k:o-k+8:o-k+8], src[ix0:ix0+8:ix0+8]
						d[0], d[1], d[2], d[3] = v[0], v[1], v[2], v[3]
						d[4], d[5], d[6], d[7] = v[4], v[5], v[6], v[7]
						continue
					}
					for kx := 0; kx < kxlo; kx++ {
						seg[kx] = 0
					}
					for kx := kxlo; kx < kxhi; kx++ {
						seg[kx] = src[ix0+kx]
					}
					for kx := kxhi; kx < k; kx++ {
						seg[kx] = 0
					}
				}
			}
		}
	}
}

// Im2ColCL writes the rows of output rows [oy0, oy1) of the convolution of
// the channels-last map x (h*w positions of c channels, row stride ld):
// output pixel (oy, ox) becomes row oy*ow+ox of col (k*k*c values ordered
// ky, kx, channel; zeros outside the map).
func Im2ColCL(col, x []float32, ld, c, h, w, k, s, p, oy0, oy1 int) {
	ow := ConvOutSize(w, k, s, p)
	kd := k * k * c
	for oy := oy0; oy < oy1; oy++ {
		for ox := 0; ox < ow; ox++ {
			row := col[(oy*ow+ox)*kd : (oy*ow+ox+1)*kd]
			ix0 := ox*s - p
			for ky := 0; ky < k; ky++ {
				iy := oy*s - p + ky
				if ld == c && iy >= 0 && iy < h && ix0 >= 0 && ix0+k <= w {
					// Dense rows: the k taps along x are k adjacent
					// positions, one copy of k*c values.
					copy(row[ky*k*c:(ky+1)*k*c], x[(iy*w+ix0)*c:])
					continue
				}
				for kx := 0; kx < k; kx++ {
					seg := row[(ky*k+kx)*c : (ky*k+kx+1)*c]
					ix := ox*s - p + kx
					if iy < 0 || iy >= h || ix < 0 || ix >= w {
						clear(seg)
						continue
					}
					copy(seg, x[(iy*w+ix)*ld:])
				}
			}
		}
	}
}

// Col2ImCL writes input rows [y0, y1) of the channels-last input gradient
// dx (h*w positions of c channels, row stride ld) from dcol, the gradient
// of Im2ColCL's matrix (rows of k*k*c). Rows are overwritten.
func Col2ImCL(dx []float32, ld int, dcol []float32, c, h, w, k, s, p, y0, y1 int) {
	oh, ow := ConvOutSize(h, k, s, p), ConvOutSize(w, k, s, p)
	kd := k * k * c
	for iy := y0; iy < y1; iy++ {
		for ix := 0; ix < w; ix++ {
			d := dx[(iy*w+ix)*ld : (iy*w+ix)*ld+c]
			clear(d)
			for ky := 0; ky < k; ky++ {
				ty := iy + p - ky
				if ty < 0 || ty%s != 0 || ty/s >= oh {
					continue
				}
				oy := ty / s
				for kx := 0; kx < k; kx++ {
					tx := ix + p - kx
					if tx < 0 || tx%s != 0 || tx/s >= ow {
						continue
					}
					o := (oy*ow+tx/s)*kd + (ky*k+kx)*c
					addRow(d, dcol[o:o+c])
				}
			}
		}
	}
}

// Col2Im writes input rows [y0, y1) of every channel of the channel-major
// input gradient dx [c, h, w] from dcol, the gradient of Im2Col's matrix
// (rows of c*k*k). Rows are overwritten.
func Col2Im(dx, dcol []float32, c, h, w, k, s, p, y0, y1 int) {
	oh, ow := ConvOutSize(h, k, s, p), ConvOutSize(w, k, s, p)
	kd := c * k * k
	for ch := 0; ch < c; ch++ {
		for iy := y0; iy < y1; iy++ {
			for ix := 0; ix < w; ix++ {
				var sum float32
				for ky := 0; ky < k; ky++ {
					ty := iy + p - ky
					if ty < 0 || ty%s != 0 || ty/s >= oh {
						continue
					}
					for kx := 0; kx < k; kx++ {
						tx := ix + p - kx
						if tx < 0 || tx%s != 0 || tx/s >= ow {
							continue
						}
						sum += dcol[((ty/s)*ow+tx/s)*kd+(ch*k+ky)*k+kx]
					}
				}
				dx[(ch*h+iy)*w+ix] = sum
			}
		}
	}
}

// addRow sets d += x.
func addRow(d, x []float32) {
	if vec() && len(d) >= 16 {
		addAVX512(&d[0], &d[0], &x[:len(d)][0], len(d))
		return
	}
	fmaRowAdd(d, x)
}

// SpaceToDepth writes block rows [by0, by1) of the s x s blocks of the
// channel-major image img [c, h, w], zero-padded by p on the top and left
// (and as needed on the bottom and right): block (by, bx), bx < gbw,
// becomes position by*gbw+bx of the channels-last map dst, c*s*s values
// ordered (channel, y, x) within the block.
//
// Why: a convolution with stride s over an image of few channels (CSwin's
// stem, 7x7 stride 4 over 3 channels) unfolds into rows of c*k*k values
// gathered k at a time (21 seven-value runs per output pixel), which costs
// more than its GEMM. On the blocked map the same convolution has stride 1
// and a kernel of ceil(k/s) blocks, so Im2ColCL copies runs of c*s*s
// values (48 for the stem) and the GEMM's depth grows to
// ceil(k/s)²·c·s² (192 instead of 147), the taps beyond k multiplying
// zero weights.
func SpaceToDepth(dst, img []float32, c, h, w, s, p, gbw, by0, by1 int) {
	cb := c * s * s
	for by := by0; by < by1; by++ {
		row := dst[by*gbw*cb : (by+1)*gbw*cb]
		for ch := 0; ch < c; ch++ {
			for y := 0; y < s; y++ {
				off := (ch*s + y) * s // within each block
				iy := by*s + y - p
				if iy < 0 || iy >= h {
					for bx := 0; bx < gbw; bx++ {
						clear(row[bx*cb+off : bx*cb+off+s])
					}
					continue
				}
				src := img[ch*h*w+iy*w : ch*h*w+iy*w+w]
				// Blocks [bxlo, bxhi) lie wholly inside the row: a plain
				// strided copy, no per-value test.
				bxlo, bxhi := min((p+s-1)/s, gbw), 0
				if w+p >= s {
					bxhi = (w+p-s)/s + 1
				}
				bxhi = max(bxlo, min(gbw, bxhi))
				for bx := 0; bx < gbw; bx++ {
					if bx == bxlo {
						d, si := bx*cb+off, bx*s-p
						for ; bx < bxhi; bx++ {
							dd, v := row[d:d+s], src[si:si+s]
							for x := range dd {
								dd[x] = v[x]
							}
							d += cb
							si += s
						}
						if bx >= gbw {
							break
						}
					}
					d, ix0 := row[bx*cb+off:bx*cb+off+s], bx*s-p
					for x := range d {
						if ix := ix0 + x; ix >= 0 && ix < w {
							d[x] = src[ix]
						} else {
							d[x] = 0
						}
					}
				}
			}
		}
	}
}
