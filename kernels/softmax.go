package kernels

import "math"

// SoftmaxRows writes the numerically stable softmax of each of rows rows of
// x (cols values, rows ld apart) into y; y may alias x. The row maximum is
// subtracted before exponentiation so that no finite input overflows. It is
// serial: callers split rows across workers (ParallelFor) themselves, which
// lets a layer pre-bind its worker function once and stay allocation-free.
func SoftmaxRows(y, x []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = x[(rows-1)*ld+cols-1]
	_ = y[(rows-1)*ld+cols-1]
	for r := 0; r < rows; r++ {
		xr := x[r*ld : r*ld+cols]
		yr := y[r*ld : r*ld+cols]
		if softmaxRowFast(yr, xr) {
			continue
		}
		m := xr[0]
		for _, v := range xr[1:] {
			if v > m {
				m = v
			}
		}
		s := expShiftRow(yr, xr, m)
		inv := 1 / s
		for j := range yr {
			yr[j] *= inv
		}
	}
}

// SoftmaxRowsBackward computes dx = scale * y ⊙ (dy - <y, dy>) row by row,
// the gradient of softmax given its output y; dx may alias dy. scale lets
// attention fold its d^-0.5 into this pass instead of an extra sweep.
func SoftmaxRowsBackward(dx, y, dy []float32, rows, cols, ld int, scale float32) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = y[(rows-1)*ld+cols-1]
	_ = dy[(rows-1)*ld+cols-1]
	_ = dx[(rows-1)*ld+cols-1]
	for r := 0; r < rows; r++ {
		yr := y[r*ld : r*ld+cols]
		gr := dy[r*ld : r*ld+cols]
		dr := dx[r*ld : r*ld+cols]
		if softmaxBwdRowFast(dr, yr, gr, scale) {
			continue
		}
		gr = gr[:len(yr)]
		dr = dr[:len(yr)]
		var d0, d1, d2, d3 float32
		j := 0
		for ; j+4 <= len(yr); j += 4 {
			d0 += yr[j] * gr[j]
			d1 += yr[j+1] * gr[j+1]
			d2 += yr[j+2] * gr[j+2]
			d3 += yr[j+3] * gr[j+3]
		}
		for ; j < len(yr); j++ {
			d0 += yr[j] * gr[j]
		}
		dot := (d0 + d1) + (d2 + d3)
		for j, v := range yr {
			dr[j] = scale * v * (gr[j] - dot)
		}
	}
}

// Expf is a float32 e^x accurate to about 2 ulp over the whole float32
// range: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-6
// polynomial for e^r and an exponent-field shift for 2^n. math.Exp works in
// float64 and costs several times more, which dominates a softmax.
func Expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -103.972 {
		return 0
	}
	if x != x {
		return x
	}
	fn := float32(math.Floor(float64(x*log2e) + 0.5))
	r := x - fn*ln2hi
	r -= fn * ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	n := int32(fn)
	// Split the scaling in two so that n down to -149 (subnormals) and up
	// to 128 stays representable.
	if n < -126 {
		return p * math.Float32frombits(uint32(n+126+127)<<23) * math.Float32frombits(uint32(1)<<23)
	}
	if n > 127 {
		return p * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(n+127)<<23)
}

// expShiftRow writes e^(x_j - m) into y and returns their sum, for
// x_j <= m (softmax rows). Expf's polynomial inlined, with the magic-number
// rounding trick instead of math.Floor and without the overflow/NaN
// branches that cannot trigger here; arguments below -87 flush to 0
// (e^-87 is below float32's normal range, and a softmax of 2^24 terms or
// fewer cannot notice it).
func expShiftRow(y, x []float32, m float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
		magic = 12582912 // 1.5 * 2^23: adding it rounds to an integer
	)
	y = y[:len(x)]
	var s0, s1 float32
	for j, v := range x {
		t := max(v-m, -87)
		fn := (t*log2e + magic) - magic
		r := t - fn*ln2hi
		r -= fn * ln2lo
		p := float32(1.9875691500e-4)
		p = p*r + 1.3981999507e-3
		p = p*r + 8.3334519073e-3
		p = p*r + 4.1665795894e-2
		p = p*r + 1.6666665459e-1
		p = p*r + 5.0000001201e-1
		p = p*r*r + r + 1
		e := p * math.Float32frombits(uint32(int32(fn)+127)<<23)
		if v-m < -87 {
			e = 0
		}
		y[j] = e
		if j&1 == 0 {
			s0 += e
		} else {
			s1 += e
		}
	}
	return s0 + s1
}
