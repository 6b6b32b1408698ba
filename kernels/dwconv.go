package kernels

// Depthwise 2-D convolution, channels-last: a map of h x w positions, each a
// row of c channels; position (y, x) starts at (y*w+x)*ld. Stride 1, odd
// square kernel k, zero "same" padding k/2, one filter per channel.
//
// Why channels-last: SLA convolves each head's raw V where it already lies,
// inside the qkv activation [N, 3C] (token-major), so the conv reads it in
// place through ld instead of transposing every head to channel-major maps.
// The innermost loop then runs over contiguous channels with one weight row
// per tap. For that, weights are tap-major: wt[(ky*k+kx)*c + ch]
// (DWWeightTapMajor converts PyTorch's [c,1,k,k]).
//
// All functions are serial over output rows [y0, y1) so callers can split
// rows (or images, or heads) across workers without allocating.

// DWWeightTapMajor converts a PyTorch depthwise weight [c,1,k,k] into the
// tap-major layout [k*k, c] these kernels use.
func DWWeightTapMajor(dst, src []float32, c, k int) {
	kk := k * k
	for ch := 0; ch < c; ch++ {
		for t := 0; t < kk; t++ {
			dst[t*c+ch] = src[ch*kk+t]
		}
	}
}

// DWWeightAddChannelMajor adds a tap-major gradient [k*k, c] into a PyTorch
// layout [c,1,k,k] gradient.
func DWWeightAddChannelMajor(dst, src []float32, c, k int) {
	kk := k * k
	for ch := 0; ch < c; ch++ {
		for t := 0; t < kk; t++ {
			dst[ch*kk+t] += src[t*c+ch]
		}
	}
}

// axpy computes y += a*x over len(y) elements, unrolled by 4.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	i := 0
	for ; i+4 <= len(y); i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// fmaRow computes y += w ⊙ x elementwise (per-channel weights).
func fmaRow(y, w, x []float32) {
	w = w[:len(y)]
	x = x[:len(y)]
	i := 0
	for ; i+4 <= len(y); i += 4 {
		y[i] += w[i] * x[i]
		y[i+1] += w[i+1] * x[i+1]
		y[i+2] += w[i+2] * x[i+2]
		y[i+3] += w[i+3] * x[i+3]
	}
	for ; i < len(y); i++ {
		y[i] += w[i] * x[i]
	}
}

// dwTapRunGo is the portable dwTapRun: one filter tap w along count
// pixels, o[i*ldo+ch] += w[ch]·in[i*ldi+ch].
func dwTapRunGo(o []float32, ldo int, in []float32, ldi int, w []float32, c, count int) {
	w = w[:c]
	for i := 0; i < count; i++ {
		fmaRow(o[i*ldo:i*ldo+c], w, in[i*ldi:])
	}
}

// dwTapDotGo is the portable dwTapDot: dw[ch] += Σ_i a[i*lda+ch]·b[i*ldb+ch].
func dwTapDotGo(dw []float32, a []float32, lda int, b []float32, ldb int, c, count int) {
	dw = dw[:c]
	for i := 0; i < count; i++ {
		fmaRow(dw, a[i*lda:i*lda+c], b[i*ldb:])
	}
}

// DWConvCL computes output rows [y0, y1) of the depthwise convolution of in
// (ld ldIn) with tap-major weights wt and optional bias (nil = none) into
// out (ld ldOut). With accumulate the result is added to out, otherwise it
// overwrites it. Work is organised tap by tap along a whole output row
// (dwTapRun), so a tap's weights stay in registers and the row, a few KiB,
// stays in L1 across the k² taps.
func DWConvCL(out []float32, ldOut int, in []float32, ldIn int, h, w, c, k int, wt, bias []float32, y0, y1 int, accumulate bool) {
	p := k / 2
	wt = wt[:k*k*c]
	if dwRowFast(out, ldOut, in, ldIn, h, w, c, k, wt, bias, y0, y1, accumulate, false) {
		return
	}
	for y := y0; y < y1; y++ {
		if !accumulate || bias != nil {
			for x := 0; x < w; x++ {
				o := out[(y*w+x)*ldOut : (y*w+x)*ldOut+c]
				switch {
				case !accumulate && bias != nil:
					copy(o, bias[:c])
				case !accumulate:
					clear(o)
				default:
					fmaRowAdd(o, bias[:c])
				}
			}
		}
		for ky := max(0, p-y); ky < min(k, h+p-y); ky++ {
			iy := y + ky - p
			for kx := 0; kx < k; kx++ {
				// Output x reads input x+kx-p, which must lie in [0, w).
				xlo, xhi := max(0, p-kx), min(w, w+p-kx)
				if xhi <= xlo {
					continue
				}
				t := ky*k + kx
				dwTapRun(out[(y*w+xlo)*ldOut:], ldOut, in[(iy*w+xlo+kx-p)*ldIn:], ldIn, wt[t*c:], c, xhi-xlo)
			}
		}
	}
}

// dwRowFast runs output rows [y0, y1) on the AVX-512 row kernel when that
// path is in use (flip: taps in reverse, for the input gradient) and
// reports whether it did.
func dwRowFast(out []float32, ldOut int, in []float32, ldIn int, h, w, c, k int, wt, bias []float32, y0, y1 int, accumulate, flip bool) bool {
	if !vec() {
		return false
	}
	if y1 <= y0 || c <= 0 || w <= 0 {
		return true
	}
	// Bounds of the last pixel each operand may touch, checked once.
	_ = out[((y1-1)*w+w-1)*ldOut+c-1]
	_ = in[((h-1)*w+w-1)*ldIn+c-1]
	var bp *float32
	if bias != nil {
		bp = &bias[:c][0]
	}
	acc, fl := 0, 0
	if accumulate {
		acc = 1
	}
	if flip {
		fl = 1
	}
	for y := y0; y < y1; y++ {
		dwRowAVX512(&out[0], ldOut, &in[0], ldIn, &wt[0], bp, h, w, c, k, y, acc, fl)
	}
	return true
}

// fmaRowAdd computes y += x.
func fmaRowAdd(y, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += x[i]
	}
}

// DWConvCLBackwardInput computes rows [y0, y1) of the input gradient din
// from the output gradient dout: the correlation of dout with the flipped
// filters. With accumulate it adds into din.
func DWConvCLBackwardInput(din []float32, ldDin int, dout []float32, ldDout int, h, w, c, k int, wt []float32, y0, y1 int, accumulate bool) {
	p := k / 2
	wt = wt[:k*k*c]
	// The correlation with the flipped filter is a convolution: the row
	// kernel reads the taps in reverse.
	if dwRowFast(din, ldDin, dout, ldDout, h, w, c, k, wt, nil, y0, y1, accumulate, true) {
		return
	}
	for y := y0; y < y1; y++ {
		if !accumulate {
			for x := 0; x < w; x++ {
				clear(din[(y*w+x)*ldDin : (y*w+x)*ldDin+c])
			}
		}
		// Input y feeds output oy = y - ky + p, which must lie in [0, h).
		for ky := max(0, y+p-h+1); ky < min(k, y+p+1); ky++ {
			oy := y - ky + p
			for kx := 0; kx < k; kx++ {
				// Input x feeds output x-kx+p, which must lie in [0, w).
				xlo, xhi := max(0, kx-p), min(w, w+kx-p)
				if xhi <= xlo {
					continue
				}
				t := ky*k + kx
				dwTapRun(din[(y*w+xlo)*ldDin:], ldDin, dout[(oy*w+xlo-kx+p)*ldDout:], ldDout, wt[t*c:], c, xhi-xlo)
			}
		}
	}
}

// DWConvCLBackwardWeight accumulates the tap-major weight gradient dwt
// [k*k, c] and the bias gradient dbias (nil = skip) contributed by output
// rows [y0, y1).
func DWConvCLBackwardWeight(dwt, dbias []float32, in []float32, ldIn int, dout []float32, ldDout int, h, w, c, k int, y0, y1 int) {
	p := k / 2
	dwt = dwt[:k*k*c]
	if vec() && y1 > y0 && c > 0 {
		// Whole rectangles per tap: one call covers every pixel of the rows.
		_ = in[((h-1)*w+w-1)*ldIn+c-1]
		_ = dout[((y1-1)*w+w-1)*ldDout+c-1]
		if dbias != nil {
			colSumsAVX512(&dbias[:c][0], &dout[y0*w*ldDout], (y1-y0)*w, ldDout, c)
		}
		for ky := 0; ky < k; ky++ {
			ylo, yhi := max(y0, p-ky), min(y1, h+p-ky)
			if yhi <= ylo {
				continue
			}
			for kx := 0; kx < k; kx++ {
				xlo, xhi := max(0, p-kx), min(w, w+p-kx)
				if xhi <= xlo {
					continue
				}
				dwTapDot2DAVX512(&dwt[(ky*k+kx)*c], &dout[(ylo*w+xlo)*ldDout], ldDout, w*ldDout,
					&in[((ylo+ky-p)*w+xlo+kx-p)*ldIn], ldIn, w*ldIn, c, xhi-xlo, yhi-ylo)
			}
		}
		return
	}
	for y := y0; y < y1; y++ {
		if dbias != nil {
			for x := 0; x < w; x++ {
				fmaRowAdd(dbias[:c], dout[(y*w+x)*ldDout:(y*w+x)*ldDout+c])
			}
		}
		for ky := max(0, p-y); ky < min(k, h+p-y); ky++ {
			iy := y + ky - p
			for kx := 0; kx < k; kx++ {
				xlo, xhi := max(0, p-kx), min(w, w+p-kx)
				if xhi <= xlo {
					continue
				}
				t := ky*k + kx
				dwTapDot(dwt[t*c:], dout[(y*w+xlo)*ldDout:], ldDout, in[(iy*w+xlo+kx-p)*ldIn:], ldIn, c, xhi-xlo)
			}
		}
	}
}
