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

// DWConvCL computes output rows [y0, y1) of the depthwise convolution of in
// (ld ldIn) with tap-major weights wt and optional bias (nil = none) into
// out (ld ldOut). With accumulate the result is added to out, otherwise it
// overwrites it.
func DWConvCL(out []float32, ldOut int, in []float32, ldIn int, h, w, c, k int, wt, bias []float32, y0, y1 int, accumulate bool) {
	p := k / 2
	wt = wt[:k*k*c]
	for y := y0; y < y1; y++ {
		kyLo, kyHi := max(0, p-y), min(k, h+p-y)
		for x := 0; x < w; x++ {
			o := out[(y*w+x)*ldOut : (y*w+x)*ldOut+c]
			if !accumulate {
				if bias != nil {
					copy(o, bias[:c])
				} else {
					clear(o)
				}
			} else if bias != nil {
				fmaRowAdd(o, bias[:c])
			}
			kxLo, kxHi := max(0, p-x), min(k, w+p-x)
			for ky := kyLo; ky < kyHi; ky++ {
				iy := y + ky - p
				for kx := kxLo; kx < kxHi; kx++ {
					ix := x + kx - p
					t := ky*k + kx
					fmaRow(o, wt[t*c:t*c+c], in[(iy*w+ix)*ldIn:])
				}
			}
		}
	}
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
	for y := y0; y < y1; y++ {
		// Output row oy = y - ky + p must lie in [0, h).
		kyLo, kyHi := max(0, y+p-h+1), min(k, y+p+1)
		for x := 0; x < w; x++ {
			d := din[(y*w+x)*ldDin : (y*w+x)*ldDin+c]
			if !accumulate {
				clear(d)
			}
			kxLo, kxHi := max(0, x+p-w+1), min(k, x+p+1)
			for ky := kyLo; ky < kyHi; ky++ {
				oy := y - ky + p
				for kx := kxLo; kx < kxHi; kx++ {
					ox := x - kx + p
					t := ky*k + kx
					fmaRow(d, wt[t*c:t*c+c], dout[(oy*w+ox)*ldDout:])
				}
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
	for y := y0; y < y1; y++ {
		kyLo, kyHi := max(0, p-y), min(k, h+p-y)
		for x := 0; x < w; x++ {
			g := dout[(y*w+x)*ldDout : (y*w+x)*ldDout+c]
			if dbias != nil {
				fmaRowAdd(dbias[:c], g)
			}
			kxLo, kxHi := max(0, p-x), min(k, w+p-x)
			for ky := kyLo; ky < kyHi; ky++ {
				iy := y + ky - p
				for kx := kxLo; kx < kxHi; kx++ {
					ix := x + kx - p
					t := ky*k + kx
					fmaRow(dwt[t*c:t*c+c], g, in[(iy*w+ix)*ldIn:])
				}
			}
		}
	}
}
