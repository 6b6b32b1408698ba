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
	LayerNormBackwardRes(dx, dw, db, dy, x, mean, rstd, w, nil, rows, c)
}

// LayerNormBackwardRes is LayerNormBackward with res (rows x c, nil: none)
// added to dx in the same pass: a pre-norm block's residual gradient
// joining the norm's input gradient. dx may alias dy or res.
func LayerNormBackwardRes(dx, dw, db, dy, x, mean, rstd, w, res []float32, rows, c int) {
	checkLen("LayerNormBackward", rows*c, dx, dy, x)
	checkLen("LayerNormBackward", rows, mean, rstd)
	if res != nil {
		checkLen("LayerNormBackward", rows*c, res)
	}
	// The parameter gradients read dy, so they go first when dx overwrites it.
	if dw != nil || db != nil {
		runCols(func(j *job, lo, hi int) {
			layerNormParamGrad(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.r, j.c, lo, hi)
		}, rows, c, dw, db, dy, x, mean, rstd)
	}
	if rows*c >= parallelMin {
		newJob(func(j *job, lo, hi int) {
			layerNormBwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.s[6], lo, hi, j.c)
		}, rows, c, dx, dy, x, mean, rstd, w, res).exec(rows, rowGrain(c))
		return
	}
	layerNormBwd(dx, dy, x, mean, rstd, w, res, 0, rows, c)
}

func layerNormBwd(dx, dy, x, mean, rstd, w, res []float32, lo, hi, c int) {
	inv := 1 / float32(c)
	if vec() && hi > lo && c > 0 && w != nil {
		_, _, _, _ = dx[hi*c-1], dy[hi*c-1], x[hi*c-1], w[c-1]
		_, _ = mean[hi-1], rstd[hi-1]
		if res != nil {
			_ = res[hi*c-1]
			lnBwdResAVX512(&dx[lo*c], &dy[lo*c], &x[lo*c], &mean[lo], &rstd[lo], &w[0], &res[lo*c], hi-lo, c, inv)
			return
		}
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
		} else {
			for j, v := range xr {
				s1 += dyr[j]
				s2 += dyr[j] * (v - m)
			}
		}
		s1 *= inv
		s2 *= inv * rs
		// Each element reads dy, x and res before dx is written, so dx may
		// alias dy or res.
		for j, v := range xr {
			g := dyr[j]
			if w != nil {
				g *= w[j]
			}
			d := rs * (g - s1 - (v-m)*rs*s2)
			if res != nil {
				d += res[r*c+j]
			}
			dxr[j] = d
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

// LayerNormMixForward is PRepBN's training forward (docs/method.md 1.2) in one
// output pass: with LN(x) = (x-mean_r)*rstd_r*w + b (statistics computed
// here as LayerNormForward does, into mean and rstd) and the BatchNorm
// branch written as AffineCols2 writes it, BN(x) = skip*x + g*(x-mu) +
// beta (g = gamma/std and mu the batch mean, skip RepBN's alpha), it sets
// y = lam*LN(x) + oml*BN(x). Each branch and the mix are the same float32
// operations as LayerNormForward, AffineCols2 and Axpby in turn, so the
// result equals the three-pass form bit for bit; it just never writes the
// branches to memory. mean, rstd, w, b must be non-nil.
func LayerNormMixForward(y, mean, rstd, x, w, b []float32, rows, c int, eps, lam, oml, skip float32, g, mu, beta []float32) {
	checkLen("LayerNormMixForward", rows*c, y, x)
	checkLen("LayerNormMixForward", rows, mean, rstd)
	checkLen("LayerNormMixForward", c, w, b, g, mu, beta)
	j := newJob(func(j *job, lo, hi int) {
		layerNormMixFwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.s[6], j.s[7], j.s[8], lo, hi, j.c,
			j.f[0], j.f[1], j.f[2], j.f[3])
	}, rows, c, y, mean, rstd, x, w, b, g, mu, beta)
	j.f = [4]float32{eps, lam, oml, skip}
	if rows*c >= parallelMin {
		j.exec(rows, rowGrain(c))
		return
	}
	j.body(j, 0, rows)
	j.release()
}

func layerNormMixFwd(y, mean, rstd, x, w, b, g, mu, beta []float32, lo, hi, c int, eps, lam, oml, skip float32) {
	if hi <= lo || c == 0 {
		return
	}
	if vec() {
		_, _ = y[hi*c-1], x[hi*c-1]
		_, _, _, _, _ = w[c-1], b[c-1], g[c-1], mu[c-1], beta[c-1]
		_, _ = mean[hi-1], rstd[hi-1]
		lnMixFwdAVX512(&y[lo*c], &mean[lo], &rstd[lo], &x[lo*c], &w[0], &b[0], &g[0], &mu[0], &beta[0], hi-lo, c,
			1/float32(c), eps, lam, oml, skip)
		return
	}
	layerNormFwd(y, mean, rstd, x, w, b, lo, hi, c, eps)
	g, mu, beta = g[:c], mu[:c], beta[:c]
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		yr := y[r*c : r*c+c]
		yr = yr[:len(xr)]
		for j, v := range xr {
			bn := skip*v + g[j]*(v-mu[j]) + beta[j]
			yr[j] = lam*yr[j] + oml*bn
		}
	}
}

// LayerNormBatchNormSums sets, per column j of the rows x c matrices dy and
// x, sdy[j] = sum dy, sdyc[j] = sum dy*(x-mu[j]) and sdyh[j] = sum
// dy*((x-mean_r)*rstd_r): in one pass, the reductions of PRepBN's backward
// (the BatchNorm branch's and the LayerNorm branch's weight and bias
// gradients). Column-parallel, rows in order: thread-count invariant, and
// the same bits on both kernel paths.
func LayerNormBatchNormSums(sdy, sdyc, sdyh, dy, x, mu, mean, rstd []float32, rows, c int) {
	checkLen("LayerNormBatchNormSums", c, sdy, sdyc, sdyh, mu)
	checkLen("LayerNormBatchNormSums", rows*c, dy, x)
	checkLen("LayerNormBatchNormSums", rows, mean, rstd)
	runCols(func(j *job, lo, hi int) {
		lnBNSums(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.s[6], j.s[7], j.r, j.c, lo, hi)
	}, rows, c, sdy, sdyc, sdyh, dy, x, mu, mean, rstd)
}

func lnBNSums(sdy, sdyc, sdyh, dy, x, mu, mean, rstd []float32, rows, c, lo, hi int) {
	a, b, h := sdy[lo:hi], sdyc[lo:hi], sdyh[lo:hi]
	b, h = b[:len(a)], h[:len(a)]
	clear(a)
	clear(b)
	clear(h)
	if rows == 0 || hi <= lo {
		return
	}
	if vec() {
		_, _ = dy[(rows-1)*c+hi-1], x[(rows-1)*c+hi-1]
		_, _ = mean[rows-1], rstd[rows-1]
		lnBNSumsAVX512(&a[0], &b[0], &h[0], &dy[lo], &x[lo], &mu[lo:hi][0], &mean[0], &rstd[0], rows, c, hi-lo)
		return
	}
	mm := mu[lo:hi]
	mm = mm[:len(a)]
	for r := 0; r < rows; r++ {
		m, rs := mean[r], rstd[r]
		dr := dy[r*c+lo : r*c+hi]
		xr := x[r*c+lo : r*c+hi]
		dr, xr = dr[:len(a)], xr[:len(a)]
		for j, g := range dr {
			a[j] += g
			b[j] += g * (xr[j] - mm[j])
			h[j] += g * ((xr[j] - m) * rs)
		}
	}
}

// LayerNormMixBackward is PRepBN's input gradient in one pass per row:
// dx = lam*LNback(dy) + (k1*dy + k2*(x-mu) + k3) + res, where LNback is
// LayerNormBackward's dx for the branch's statistics and weight w, and the
// second term is the BatchNorm branch's gradient in AffineCols2 form (its
// coefficients carry the (1-lambda) factor). res (nil: none) is a residual
// gradient joining here. dx may alias dy or res.
func LayerNormMixBackward(dx, dy, x, mean, rstd, w []float32, lam float32, k1, k2, mu, k3, res []float32, rows, c int) {
	checkLen("LayerNormMixBackward", rows*c, dx, dy, x)
	checkLen("LayerNormMixBackward", rows, mean, rstd)
	checkLen("LayerNormMixBackward", c, w, k1, k2, mu, k3)
	if res != nil {
		checkLen("LayerNormMixBackward", rows*c, res)
	}
	j := newJob(func(j *job, lo, hi int) {
		layerNormMixBwd(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.s[6], j.s[7], j.s[8], j.s[9], j.s[10],
			lo, hi, j.c, j.f[0])
	}, rows, c, dx, dy, x, mean, rstd, w, k1, k2, mu, k3, res)
	j.f[0] = lam
	if rows*c >= parallelMin {
		j.exec(rows, rowGrain(c))
		return
	}
	j.body(j, 0, rows)
	j.release()
}

func layerNormMixBwd(dx, dy, x, mean, rstd, w, k1, k2, mu, k3, res []float32, lo, hi, c int, lam float32) {
	if hi <= lo || c == 0 {
		return
	}
	inv := 1 / float32(c)
	if vec() {
		_, _, _ = dx[hi*c-1], dy[hi*c-1], x[hi*c-1]
		_, _, _, _, _ = w[c-1], k1[c-1], k2[c-1], mu[c-1], k3[c-1]
		_, _ = mean[hi-1], rstd[hi-1]
		if res != nil {
			_ = res[hi*c-1]
			lnMixBwdResAVX512(&dx[lo*c], &dy[lo*c], &x[lo*c], &mean[lo], &rstd[lo], &w[0], &k1[0], &k2[0], &mu[0], &k3[0],
				&res[lo*c], hi-lo, c, inv, lam)
			return
		}
		lnMixBwdAVX512(&dx[lo*c], &dy[lo*c], &x[lo*c], &mean[lo], &rstd[lo], &w[0], &k1[0], &k2[0], &mu[0], &k3[0],
			hi-lo, c, inv, lam)
		return
	}
	w, k1, k2, mu, k3 = w[:c], k1[:c], k2[:c], mu[:c], k3[:c]
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		dyr := dy[r*c : r*c+c]
		dxr := dx[r*c : r*c+c]
		dyr, dxr = dyr[:len(xr)], dxr[:len(xr)]
		m, rs := mean[r], rstd[r]
		var s1, s2 float32
		for j, v := range xr {
			g := dyr[j] * w[j]
			s1 += g
			s2 += g * (v - m)
		}
		s1 *= inv
		s2 *= inv * rs
		for j, v := range xr {
			ln := rs * (dyr[j]*w[j] - s1 - (v-m)*rs*s2)
			d := lam*ln + (k1[j]*dyr[j] + k2[j]*(v-mu[j]) + k3[j])
			if res != nil {
				d += res[r*c+j]
			}
			dxr[j] = d
		}
	}
}
