package kernels

import "math"

// Normalisation kernels over the last axis of a rows x c matrix (LayerNorm,
// RMSNorm). The forward pass keeps per-row statistics (mean, 1/std) so the
// backward pass never recomputes them. Work splits across threads by rows;
// the weight/bias gradients, which reduce over rows, are a second
// column-parallel pass (see reduce.go) so the result does not depend on the
// thread count.

// rowGrain returns how many rows of width c make a chunk worth a thread.
func rowGrain(c int) int { return max(1, elemGrain/max(c, 1)) }

// LayerNormForward sets y = (x-mean)/sqrt(var+eps)*w + b per row, with the
// biased variance. The statistics take one pass (sum and sum of squares)
// when that is exact enough, i.e. when mean^2 <= 4*var, as in transformer
// activations whose per-token mean is small against their spread; rows
// with a large mean get a second pass around the mean, so the result stays
// stable when |mean| >> std.
// mean and rstd (length rows) receive the statistics if non-nil; w and b
// may be nil (no affine). y may alias x.
func LayerNormForward(y, mean, rstd, x, w, b []float32, rows, c int, eps float32) {
	checkLen("LayerNormForward", rows*c, y, x)
	if rows*c >= parallelMin {
		j := newJob(func(j *job, lo, hi int) {
			layerNormFwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], lo, hi, j.c, j.f[0])
		}, rows, c, y, mean, rstd, x, w, b)
		j.f[0] = eps
		j.exec(rows, rowGrain(c))
		return
	}
	layerNormFwd(y, mean, rstd, x, w, b, 0, rows, c, eps)
}

func layerNormFwd(y, mean, rstd, x, w, b []float32, lo, hi, c int, eps float32) {
	inv := 1 / float32(c)
	if vec() && hi > lo && c > 0 && w != nil && b != nil {
		_, _, _, _ = y[hi*c-1], x[hi*c-1], w[c-1], b[c-1]
		var mp, rp *float32
		if mean != nil {
			mp = &mean[lo:hi][0]
		}
		if rstd != nil {
			rp = &rstd[lo:hi][0]
		}
		lnFwdAVX512(&y[lo*c], mp, rp, &x[lo*c], &w[0], &b[0], hi-lo, c, inv, eps)
		return
	}
	if w != nil {
		w = w[:c]
	}
	if b != nil {
		b = b[:c]
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		yr := y[r*c : r*c+c]
		yr = yr[:len(xr)]
		s1, s2 := sumAndSq32(xr)
		m := s1 * inv
		v := s2*inv - m*m
		if !(m*m <= 4*v) {
			// E[x^2]-m^2 cancels: redo the variance around the mean.
			v = sumSqDev32(xr, m) * inv
		}
		rs := float32(1 / math.Sqrt(float64(v+eps)))
		if mean != nil {
			mean[r] = m
		}
		if rstd != nil {
			rstd[r] = rs
		}
		switch {
		case w != nil && b != nil:
			w, b := w[:len(xr)], b[:len(xr)]
			for j, v := range xr {
				yr[j] = (v-m)*rs*w[j] + b[j]
			}
		case w != nil:
			w := w[:len(xr)]
			for j, v := range xr {
				yr[j] = (v - m) * rs * w[j]
			}
		default:
			for j, v := range xr {
				yr[j] = (v - m) * rs
			}
		}
	}
}

// sumAndSq32 returns sum x and sum x^2 of a short row in float32, four
// chains each (the add latency, not the loads, bounds a single chain).
func sumAndSq32(x []float32) (float32, float32) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float32
	for ; len(x) >= 4; x = x[4:] {
		s0 += x[0]
		s1 += x[1]
		s2 += x[2]
		s3 += x[3]
		q0 += x[0] * x[0]
		q1 += x[1] * x[1]
		q2 += x[2] * x[2]
		q3 += x[3] * x[3]
	}
	for _, v := range x {
		s0 += v
		q0 += v * v
	}
	return (s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)
}

// sumSqDev32 returns sum (x-m)^2 with four chains.
func sumSqDev32(x []float32, m float32) float32 {
	var s0, s1, s2, s3 float32
	for ; len(x) >= 4; x = x[4:] {
		d0, d1, d2, d3 := x[0]-m, x[1]-m, x[2]-m, x[3]-m
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for _, v := range x {
		s0 += (v - m) * (v - m)
	}
	return (s0 + s1) + (s2 + s3)
}

// sumSq32 returns sum x^2 with four chains.
func sumSq32(x []float32) float32 {
	var s0, s1, s2, s3 float32
	for ; len(x) >= 4; x = x[4:] {
		s0 += x[0] * x[0]
		s1 += x[1] * x[1]
		s2 += x[2] * x[2]
		s3 += x[3] * x[3]
	}
	for _, v := range x {
		s0 += v * v
	}
	return (s0 + s1) + (s2 + s3)
}

// LayerNormBackward sets dx from dy given the forward's x, mean and rstd:
// dx = rstd*(g - mean(g) - xhat*mean(g*xhat)) with g = dy*w (w nil means 1).
// It accumulates dw += sum_r dy*xhat and db += sum_r dy when they are
// non-nil. dx may alias dy.
func LayerNormBackward(dx, dw, db, dy, x, mean, rstd, w []float32, rows, c int) {
	checkLen("LayerNormBackward", rows*c, dx, dy, x)
	checkLen("LayerNormBackward", rows, mean, rstd)
	// The parameter gradients read dy, so they go first when dx overwrites it.
	if dw != nil || db != nil {
		runCols(func(j *job, lo, hi int) {
			layerNormParamGrad(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.r, j.c, lo, hi)
		}, rows, c, dw, db, dy, x, mean, rstd)
	}
	if rows*c >= parallelMin {
		newJob(func(j *job, lo, hi int) { layerNormBwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], lo, hi, j.c) }, rows, c, dx, dy, x, mean, rstd, w).exec(rows, rowGrain(c))
		return
	}
	layerNormBwd(dx, dy, x, mean, rstd, w, 0, rows, c)
}

func layerNormBwd(dx, dy, x, mean, rstd, w []float32, lo, hi, c int) {
	inv := 1 / float32(c)
	if vec() && hi > lo && c > 0 && w != nil {
		_, _, _, _ = dx[hi*c-1], dy[hi*c-1], x[hi*c-1], w[c-1]
		_, _ = mean[hi-1], rstd[hi-1]
		lnBwdAVX512(&dx[lo*c], &dy[lo*c], &x[lo*c], &mean[lo], &rstd[lo], &w[0], hi-lo, c, inv)
		return
	}
	if w != nil {
		w = w[:c]
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		dyr := dy[r*c : r*c+c]
		dxr := dx[r*c : r*c+c]
		dyr, dxr = dyr[:len(xr)], dxr[:len(xr)]
		m, rs := mean[r], rstd[r]
		var s1, s2 float32
		if w != nil {
			w := w[:len(xr)]
			for j, v := range xr {
				g := dyr[j] * w[j]
				s1 += g
				s2 += g * (v - m)
			}
			s1 *= inv
			s2 *= inv * rs
			for j, v := range xr {
				dxr[j] = rs * (dyr[j]*w[j] - s1 - (v-m)*rs*s2)
			}
			continue
		}
		for j, v := range xr {
			s1 += dyr[j]
			s2 += dyr[j] * (v - m)
		}
		s1 *= inv
		s2 *= inv * rs
		for j, v := range xr {
			dxr[j] = rs * (dyr[j] - s1 - (v-m)*rs*s2)
		}
	}
}

func layerNormParamGrad(dw, db, dy, x, mean, rstd []float32, rows, c, lo, hi int) {
	if vec() && dw != nil && db != nil && rows > 0 && hi > lo {
		_, _, _, _ = dy[(rows-1)*c+hi-1], x[(rows-1)*c+hi-1], dw[hi-1], db[hi-1]
		_, _ = mean[rows-1], rstd[rows-1]
		lnParamGradAVX512(&dw[lo], &db[lo], &dy[lo], &x[lo], &mean[0], &rstd[0], rows, c, hi-lo)
		return
	}
	for r := 0; r < rows; r++ {
		m, rs := mean[r], rstd[r]
		dyr := dy[r*c+lo : r*c+hi]
		xr := x[r*c+lo : r*c+hi]
		xr = xr[:len(dyr)]
		if dw != nil {
			d := dw[lo:hi]
			d = d[:len(dyr)]
			for j, g := range dyr {
				d[j] += g * ((xr[j] - m) * rs)
			}
		}
		if db != nil {
			d := db[lo:hi]
			d = d[:len(dyr)]
			for j, g := range dyr {
				d[j] += g
			}
		}
	}
}

// RMSNormForward sets y = x * rrms * w per row, rrms = 1/sqrt(mean(x^2)+eps)
// (LLaMA). rrms (length rows) receives the scale if non-nil; w may be nil.
// y may alias x.
func RMSNormForward(y, rrms, x, w []float32, rows, c int, eps float32) {
	checkLen("RMSNormForward", rows*c, y, x)
	if rows*c >= parallelMin {
		j := newJob(func(j *job, lo, hi int) { rmsNormFwd(j.s[0], j.s[1], j.s[2], j.s[3], lo, hi, j.c, j.f[0]) }, rows, c, y, rrms, x, w)
		j.f[0] = eps
		j.exec(rows, rowGrain(c))
		return
	}
	rmsNormFwd(y, rrms, x, w, 0, rows, c, eps)
}

func rmsNormFwd(y, rrms, x, w []float32, lo, hi, c int, eps float32) {
	inv := 1 / float32(c)
	if w != nil {
		w = w[:c]
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		yr := y[r*c : r*c+c]
		yr = yr[:len(xr)]
		rs := float32(1 / math.Sqrt(float64(sumSq32(xr)*inv+eps)))
		if rrms != nil {
			rrms[r] = rs
		}
		if w == nil {
			for j, v := range xr {
				yr[j] = v * rs
			}
			continue
		}
		w := w[:len(xr)]
		for j, v := range xr {
			yr[j] = v * rs * w[j]
		}
	}
}

// RMSNormBackward sets dx = rrms*(g - xhat*mean(g*xhat)), g = dy*w, xhat =
// x*rrms, and accumulates dw += sum_r dy*xhat when dw is non-nil. dx may
// alias dy.
func RMSNormBackward(dx, dw, dy, x, rrms, w []float32, rows, c int) {
	checkLen("RMSNormBackward", rows*c, dx, dy, x)
	checkLen("RMSNormBackward", rows, rrms)
	if dw != nil {
		runCols(func(j *job, lo, hi int) { rmsNormParamGrad(j.s[0], j.s[1], j.s[2], j.s[3], j.r, j.c, lo, hi) }, rows, c, dw, dy, x, rrms)
	}
	if rows*c >= parallelMin {
		newJob(func(j *job, lo, hi int) { rmsNormBwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], lo, hi, j.c) }, rows, c, dx, dy, x, rrms, w).exec(rows, rowGrain(c))
		return
	}
	rmsNormBwd(dx, dy, x, rrms, w, 0, rows, c)
}

func rmsNormBwd(dx, dy, x, rrms, w []float32, lo, hi, c int) {
	inv := 1 / float32(c)
	if w != nil {
		w = w[:c]
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		dyr := dy[r*c : r*c+c]
		dxr := dx[r*c : r*c+c]
		dyr, dxr = dyr[:len(xr)], dxr[:len(xr)]
		rs := rrms[r]
		var s float32
		if w != nil {
			w := w[:len(xr)]
			for j, v := range xr {
				s += dyr[j] * w[j] * v
			}
			s *= inv * rs * rs
			for j, v := range xr {
				dxr[j] = rs * (dyr[j]*w[j] - v*s)
			}
			continue
		}
		for j, v := range xr {
			s += dyr[j] * v
		}
		s *= inv * rs * rs
		for j, v := range xr {
			dxr[j] = rs * (dyr[j] - v*s)
		}
	}
}

func rmsNormParamGrad(dw, dy, x, rrms []float32, rows, c, lo, hi int) {
	d := dw[lo:hi]
	for r := 0; r < rows; r++ {
		rs := rrms[r]
		dyr := dy[r*c+lo : r*c+hi]
		xr := x[r*c+lo : r*c+hi]
		dyr, xr = dyr[:len(d)], xr[:len(d)]
		for j, g := range dyr {
			d[j] += g * xr[j] * rs
		}
	}
}
