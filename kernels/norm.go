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
// biased variance (two passes over the row: stable when |mean| >> std).
// mean and rstd (length rows) receive the statistics if non-nil; w and b
// may be nil (no affine). y may alias x.
func LayerNormForward(y, mean, rstd, x, w, b []float32, rows, c int, eps float32) {
	checkLen("LayerNormForward", rows*c, y, x)
	if rows*c >= parallelMin {
		j := newJob(func(j *job, lo, hi int) {
			layerNormFwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], lo, hi, j.c, j.f[0])
		}, rows, c, y, mean, rstd, x, w, b)
		j.f[0] = eps
		j.run(rows, rowGrain(c))
		return
	}
	layerNormFwd(y, mean, rstd, x, w, b, 0, rows, c, eps)
}

func layerNormFwd(y, mean, rstd, x, w, b []float32, lo, hi, c int, eps float32) {
	inv := 1 / float32(c)
	for r := lo; r < hi; r++ {
		xr, yr := x[r*c:r*c+c], y[r*c:r*c+c]
		m := sum32(xr) * inv
		var v0, v1, v2, v3 float32
		j := 0
		for ; j+4 <= c; j += 4 {
			d0, d1, d2, d3 := xr[j]-m, xr[j+1]-m, xr[j+2]-m, xr[j+3]-m
			v0 += d0 * d0
			v1 += d1 * d1
			v2 += d2 * d2
			v3 += d3 * d3
		}
		for ; j < c; j++ {
			d := xr[j] - m
			v0 += d * d
		}
		rs := float32(1 / math.Sqrt(float64((v0+v1+v2+v3)*inv+eps)))
		if mean != nil {
			mean[r] = m
		}
		if rstd != nil {
			rstd[r] = rs
		}
		switch {
		case w != nil && b != nil:
			w, b := w[:c], b[:c]
			for j := range yr {
				yr[j] = (xr[j]-m)*rs*w[j] + b[j]
			}
		case w != nil:
			w := w[:c]
			for j := range yr {
				yr[j] = (xr[j] - m) * rs * w[j]
			}
		default:
			for j := range yr {
				yr[j] = (xr[j] - m) * rs
			}
		}
	}
}

// sum32 sums a short row in float32 with four chains.
func sum32(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
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
		newJob(func(j *job, lo, hi int) { layerNormBwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], lo, hi, j.c) }, rows, c, dx, dy, x, mean, rstd, w).run(rows, rowGrain(c))
		return
	}
	layerNormBwd(dx, dy, x, mean, rstd, w, 0, rows, c)
}

func layerNormBwd(dx, dy, x, mean, rstd, w []float32, lo, hi, c int) {
	inv := 1 / float32(c)
	for r := lo; r < hi; r++ {
		xr, dyr, dxr := x[r*c:r*c+c], dy[r*c:r*c+c], dx[r*c:r*c+c]
		m, rs := mean[r], rstd[r]
		var s1, s2 float32
		if w != nil {
			w := w[:c]
			for j := range xr {
				g := dyr[j] * w[j]
				s1 += g
				s2 += g * (xr[j] - m)
			}
			s1 *= inv
			s2 *= inv * rs
			for j := range xr {
				xh := (xr[j] - m) * rs
				dxr[j] = rs * (dyr[j]*w[j] - s1 - xh*s2)
			}
			continue
		}
		for j := range xr {
			s1 += dyr[j]
			s2 += dyr[j] * (xr[j] - m)
		}
		s1 *= inv
		s2 *= inv * rs
		for j := range xr {
			xh := (xr[j] - m) * rs
			dxr[j] = rs * (dyr[j] - s1 - xh*s2)
		}
	}
}

func layerNormParamGrad(dw, db, dy, x, mean, rstd []float32, rows, c, lo, hi int) {
	for r := 0; r < rows; r++ {
		m, rs := mean[r], rstd[r]
		dyr := dy[r*c+lo : r*c+hi]
		xr := x[r*c+lo : r*c+hi]
		xr = xr[:len(dyr)]
		if dw != nil {
			d := dw[lo:hi]
			d = d[:len(dyr)]
			for j := range dyr {
				d[j] += dyr[j] * ((xr[j] - m) * rs)
			}
		}
		if db != nil {
			d := db[lo:hi]
			d = d[:len(dyr)]
			for j := range dyr {
				d[j] += dyr[j]
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
		j.run(rows, rowGrain(c))
		return
	}
	rmsNormFwd(y, rrms, x, w, 0, rows, c, eps)
}

func rmsNormFwd(y, rrms, x, w []float32, lo, hi, c int, eps float32) {
	inv := 1 / float32(c)
	for r := lo; r < hi; r++ {
		xr, yr := x[r*c:r*c+c], y[r*c:r*c+c]
		var s0, s1, s2, s3 float32
		j := 0
		for ; j+4 <= c; j += 4 {
			s0 += xr[j] * xr[j]
			s1 += xr[j+1] * xr[j+1]
			s2 += xr[j+2] * xr[j+2]
			s3 += xr[j+3] * xr[j+3]
		}
		for ; j < c; j++ {
			s0 += xr[j] * xr[j]
		}
		rs := float32(1 / math.Sqrt(float64((s0+s1+s2+s3)*inv+eps)))
		if rrms != nil {
			rrms[r] = rs
		}
		if w == nil {
			for j := range yr {
				yr[j] = xr[j] * rs
			}
			continue
		}
		w := w[:c]
		for j := range yr {
			yr[j] = xr[j] * rs * w[j]
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
		newJob(func(j *job, lo, hi int) { rmsNormBwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], lo, hi, j.c) }, rows, c, dx, dy, x, rrms, w).run(rows, rowGrain(c))
		return
	}
	rmsNormBwd(dx, dy, x, rrms, w, 0, rows, c)
}

func rmsNormBwd(dx, dy, x, rrms, w []float32, lo, hi, c int) {
	inv := 1 / float32(c)
	for r := lo; r < hi; r++ {
		xr, dyr, dxr := x[r*c:r*c+c], dy[r*c:r*c+c], dx[r*c:r*c+c]
		rs := rrms[r]
		var s float32
		if w != nil {
			w := w[:c]
			for j := range xr {
				s += dyr[j] * w[j] * xr[j]
			}
			s *= inv * rs * rs
			for j := range xr {
				dxr[j] = rs * (dyr[j]*w[j] - xr[j]*s)
			}
			continue
		}
		for j := range xr {
			s += dyr[j] * xr[j]
		}
		s *= inv * rs * rs
		for j := range xr {
			dxr[j] = rs * (dyr[j] - xr[j]*s)
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
		for j := range d {
			d[j] += dyr[j] * xr[j] * rs
		}
	}
}
