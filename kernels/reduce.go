package kernels

import "math"

// Reductions. Column reductions (sums over rows per channel: bias
// gradients, BatchNorm statistics, norm-weight gradients) are split across
// threads by column blocks, not by rows: each thread owns whole output
// entries, so no per-thread partial buffers are needed and the result is
// bit-identical whatever the thread count (a seed gives the same model on
// 1 or 2 cores). Rows are read as contiguous segments of at least 16
// floats, which the hardware prefetcher streams as well as whole rows.

// colBlock is the column granularity of column-parallel reductions: one
// 64-byte cache line of outputs.
const colBlock = 16

// ColSums adds the column sums of the rows x c matrix x into dst (a bias
// gradient: db += sum over rows of dy).
func ColSums(dst, x []float32, rows, c int) {
	checkLen("ColSums", c, dst)
	checkLen("ColSums", rows*c, x)
	runCols(func(j *job, lo, hi int) { colSumsSerial(j.s[0], j.s[1], j.r, j.c, lo, hi) }, rows, c, dst, x)
}

func colSumsSerial(dst, x []float32, rows, c, lo, hi int) {
	d := dst[lo:hi]
	if vec() && rows > 0 && hi > lo {
		_ = x[(rows-1)*c+hi-1]
		colSumsAVX512(&d[0], &x[lo], rows, c, hi-lo)
		return
	}
	for r := 0; r < rows; r++ {
		xr := x[r*c+lo : r*c+hi]
		xr = xr[:len(d)]
		j := 0
		for ; j+4 <= len(d); j += 4 {
			d[j] += xr[j]
			d[j+1] += xr[j+1]
			d[j+2] += xr[j+2]
			d[j+3] += xr[j+3]
		}
		for ; j < len(d); j++ {
			d[j] += xr[j]
		}
	}
}

// ColSumsStrided adds the column sums of the rows x cols matrix x (row
// stride ld) into dst, rows in order: dst[j] += x[0,j] + x[1,j] + ... Serial;
// callers split columns (or independent matrices) across threads.
func ColSumsStrided(dst, x []float32, rows, cols, ld int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	checkLen("ColSumsStrided", cols, dst)
	checkLen("ColSumsStrided", (rows-1)*ld+cols, x)
	if vec() {
		colSumsAVX512(&dst[0], &x[0], rows, ld, cols)
		return
	}
	d := dst[:cols]
	for r := 0; r < rows; r++ {
		xr := x[r*ld : r*ld+cols]
		for j, v := range xr {
			d[j] += v
		}
	}
}

// ColSumsDot sets sx[j] = sum_r x[r,j] and sxy[j] = sum_r x[r,j]*(y[r,j]-m[j])
// (m nil means 0): in one pass, the two reductions every BatchNorm backward
// needs (sum dy and sum dy*(x-mean), the latter exact even when a channel's
// mean is large against its spread).
func ColSumsDot(sx, sxy, x, y, m []float32, rows, c int) {
	checkLen("ColSumsDot", c, sx, sxy)
	checkLen("ColSumsDot", rows*c, x, y)
	if m != nil {
		checkLen("ColSumsDot", c, m)
	}
	runCols(func(j *job, lo, hi int) { colSumsDotSerial(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.r, j.c, lo, hi) }, rows, c, sx, sxy, x, y, m)
}

func colSumsDotSerial(sx, sxy, x, y, m []float32, rows, c, lo, hi int) {
	a, b := sx[lo:hi], sxy[lo:hi]
	clear(a)
	clear(b)
	b = b[:len(a)]
	if vec() && rows > 0 && hi > lo {
		_, _ = x[(rows-1)*c+hi-1], y[(rows-1)*c+hi-1]
		var mp *float32
		if m != nil {
			mp = &m[lo:hi][0]
		}
		colSumsDotAVX512(&a[0], &b[0], &x[lo], &y[lo], mp, rows, c, hi-lo)
		return
	}
	for r := 0; r < rows; r++ {
		xr := x[r*c+lo : r*c+hi]
		yr := y[r*c+lo : r*c+hi]
		xr, yr = xr[:len(a)], yr[:len(a)]
		if m == nil {
			for j := range a {
				a[j] += xr[j]
				b[j] += xr[j] * yr[j]
			}
			continue
		}
		mm := m[lo:hi]
		mm = mm[:len(a)]
		for j := range a {
			a[j] += xr[j]
			b[j] += xr[j] * (yr[j] - mm[j])
		}
	}
}

// ColMeanVar sets mean[j] and the biased variance vr[j] of each column of
// the rows x c matrix x (BatchNorm statistics over all B*N tokens). One
// pass streams whole row segments into float64 sums of x and x^2 per
// column (the job's scratch: columns are split between threads, so one
// shared array serves them all). In float64, E[x^2]-mean^2 keeps ~30 good
// bits while mean^2 <= 1e6*var; a channel beyond that (a huge mean against
// its spread) gets a second pass around its mean, so the result is as
// stable as the two-pass formula at the cost of one pass in the usual case.
func ColMeanVar(mean, vr, x []float32, rows, c int) {
	checkLen("ColMeanVar", c, mean, vr)
	checkLen("ColMeanVar", rows*c, x)
	runCols(func(j *job, lo, hi int) { colMeanVarSerial(j.f64, j.s[0], j.s[1], j.s[2], j.r, j.c, lo, hi) }, rows, c, mean, vr, x)
}

func colMeanVarSerial(scratch []float64, mean, vr, x []float32, rows, c, lo, hi int) {
	sum, sq := scratch[lo:hi], scratch[c+lo:c+hi]
	sq = sq[:len(sum)]
	clear(sum)
	clear(sq)
	if vec() && rows > 0 && hi > lo {
		_ = x[(rows-1)*c+hi-1]
		colSumSq64AVX512(&sum[0], &sq[0], &x[lo], rows, c, hi-lo)
	} else {
		for r := 0; r < rows; r++ {
			xr := x[r*c+lo : r*c+hi]
			xr = xr[:len(sum)]
			for j, v := range xr {
				e := float64(v)
				sum[j] += e
				sq[j] += e * e
			}
		}
	}
	inv := 1 / float64(max(rows, 1))
	m, v := mean[lo:hi], vr[lo:hi]
	m, v = m[:len(sum)], v[:len(sum)]
	redo := false
	for j := range sum {
		mu := sum[j] * inv
		va := sq[j]*inv - mu*mu
		m[j] = float32(mu)
		v[j] = float32(max(va, 0))
		// From here sum holds the float64 mean of a column that needs the
		// second pass and +Inf for the others.
		sum[j] = math.Inf(1)
		if !(mu*mu <= 1e6*va) {
			redo = true
			sum[j], sq[j] = mu, 0
		}
	}
	if !redo {
		return
	}
	// Second pass around the float64 mean (the float32 one is off by up to
	// half an ulp of the mean, which is what made the first pass inexact).
	for r := 0; r < rows; r++ {
		xr := x[r*c+lo : r*c+hi]
		xr = xr[:len(sum)]
		for j, e := range xr {
			if mu := sum[j]; !math.IsInf(mu, 1) {
				d := float64(e) - mu
				sq[j] += d * d
			}
		}
	}
	for j, mu := range sum {
		if !math.IsInf(mu, 1) {
			v[j] = float32(sq[j] * inv)
		}
	}
}

// Sum returns the sum of x, accumulated in float64.
func Sum(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return s0 + s1 + s2 + s3
}

// Dot returns sum x[i]*y[i] over len(x), accumulated in float64 (scalar
// gradients such as RepBN's alpha sum over every element).
func Dot(x, y []float32) float64 {
	checkLen("Dot", len(x), y)
	y = y[:len(x)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i] * y[i])
		s1 += float64(x[i+1] * y[i+1])
		s2 += float64(x[i+2] * y[i+2])
		s3 += float64(x[i+3] * y[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i] * y[i])
	}
	return s0 + s1 + s2 + s3
}

// RowMax sets dst[r] to the maximum of row r of the rows x c matrix x.
func RowMax(dst, x []float32, rows, c int) {
	checkLen("RowMax", rows, dst)
	checkLen("RowMax", rows*c, x)
	for r := 0; r < rows; r++ {
		xr := x[r*c : r*c+c]
		m := xr[0]
		for _, v := range xr[1:] {
			if v > m {
				m = v
			}
		}
		dst[r] = m
	}
}
