package kernels

import "fmt"

// Elementwise kernels: the residual adds, scalings and mixes between layers.
// Each is one streaming pass written as a plain indexed loop over slices
// re-sliced to a common length, so the compiler drops every bounds check
// (Go does not vectorise; what it can do is keep the loop body minimal).
// Work is split across the worker pool from parallelMin elements on: the
// pool hands out a job in about a microsecond, while 16 Ki elements take
// 5-10 us on one core even for a plain add; below that one core is faster.

// parallelMin is the element count from which elementwise kernels use
// ParallelFor (GELU, ~4x costlier per element, from a quarter of it). It is
// a variable so tests can force the parallel path.
var parallelMin = 1 << 14

// elemGrain is the smallest chunk handed to one thread (a multiple of 16
// floats, so that two threads never write the same cache line).
const elemGrain = 1 << 13

func checkLen(op string, n int, s ...[]float32) {
	for i, x := range s {
		if len(x) < n {
			panic(fmt.Sprintf("kernels.%s: operand %d has %d elements, need %d", op, i, len(x), n))
		}
	}
}

// Add sets dst = a + b over len(dst) elements.
func Add(dst, a, b []float32) {
	n := len(dst)
	checkLen("Add", n, a, b)
	if n >= parallelMin {
		newJob(func(j *job, lo, hi int) { addSerial(j.s[0][lo:hi], j.s[1][lo:hi], j.s[2][lo:hi]) }, 0, 0, dst, a, b).exec(n, elemGrain)
		return
	}
	addSerial(dst, a, b)
}

func addSerial(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	if vec() && len(dst) > 0 {
		addAVX512(&dst[0], &a[0], &b[0], len(dst))
		return
	}
	addSerialGo(dst, a, b)
}

func addSerialGo(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// AddTo sets dst += x over len(dst) elements (the residual connection).
func AddTo(dst, x []float32) { Axpy(dst, 1, x) }

// Axpy sets dst += alpha*x over len(dst) elements.
func Axpy(dst []float32, alpha float32, x []float32) {
	n := len(dst)
	checkLen("Axpy", n, x)
	if n >= parallelMin {
		j := newJob(func(j *job, lo, hi int) { axpySerial(j.s[0][lo:hi], j.f[0], j.s[1][lo:hi]) }, 0, 0, dst, x)
		j.f[0] = alpha
		j.exec(n, elemGrain)
		return
	}
	axpySerial(dst, alpha, x)
}

func axpySerial(dst []float32, alpha float32, x []float32) {
	x = x[:len(dst)]
	if vec() && len(dst) > 0 {
		axpyAVX512(&dst[0], alpha, &x[0], len(dst))
		return
	}
	for i, v := range x {
		dst[i] += alpha * v
	}
}

// Axpby sets dst = a*x + b*y over len(dst) elements (LinearNorm's
// lambda-mix of its two branches). dst may alias x or y.
func Axpby(dst []float32, a float32, x []float32, b float32, y []float32) {
	n := len(dst)
	checkLen("Axpby", n, x, y)
	if n >= parallelMin {
		j := newJob(func(j *job, lo, hi int) { axpbySerial(j.s[0][lo:hi], j.f[0], j.s[1][lo:hi], j.f[1], j.s[2][lo:hi]) }, 0, 0, dst, x, y)
		j.f[0], j.f[1] = a, b
		j.exec(n, elemGrain)
		return
	}
	axpbySerial(dst, a, x, b, y)
}

func axpbySerial(dst []float32, a float32, x []float32, b float32, y []float32) {
	x, y = x[:len(dst)], y[:len(dst)]
	if vec() && len(dst) > 0 {
		axpbyAVX512(&dst[0], a, &x[0], b, &y[0], len(dst))
		return
	}
	for i := range dst {
		dst[i] = a*x[i] + b*y[i]
	}
}

// Scale sets dst = s*x over len(dst) elements; dst may alias x.
func Scale(dst []float32, s float32, x []float32) {
	n := len(dst)
	checkLen("Scale", n, x)
	if n >= parallelMin {
		j := newJob(func(j *job, lo, hi int) { scaleSerial(j.s[0][lo:hi], j.f[0], j.s[1][lo:hi]) }, 0, 0, dst, x)
		j.f[0] = s
		j.exec(n, elemGrain)
		return
	}
	scaleSerial(dst, s, x)
}

func scaleSerial(dst []float32, s float32, x []float32) {
	x = x[:len(dst)]
	if vec() && len(dst) > 0 {
		scaleAVX512(&dst[0], s, &x[0], len(dst))
		return
	}
	for i, v := range x {
		dst[i] = s * v
	}
}

// Mul sets dst = a*b elementwise over len(dst) elements.
func Mul(dst, a, b []float32) {
	n := len(dst)
	checkLen("Mul", n, a, b)
	if n >= parallelMin {
		newJob(func(j *job, lo, hi int) { mulSerial(j.s[0][lo:hi], j.s[1][lo:hi], j.s[2][lo:hi]) }, 0, 0, dst, a, b).exec(n, elemGrain)
		return
	}
	mulSerial(dst, a, b)
}

func mulSerial(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	if vec() && len(dst) > 0 {
		mulAVX512(&dst[0], &a[0], &b[0], len(dst))
		return
	}
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// AffineCols sets y[r,j] = a[j]*x[r,j] + b[j] for a rows x c matrix: every
// eval-mode BatchNorm/RepBN and, with batch statistics folded into a and b,
// the training-mode forward too. b may be nil (no shift). y may alias x.
func AffineCols(y, x, a, b []float32, rows, c int) {
	n := rows * c
	checkLen("AffineCols", n, y, x)
	checkLen("AffineCols", c, a)
	if b != nil {
		checkLen("AffineCols", c, b)
	}
	if n >= parallelMin {
		newJob(func(j *job, lo, hi int) { affineColsSerial(j.s[0], j.s[1], j.s[2], j.s[3], lo, hi, j.c) }, rows, c, y, x, a, b).exec(rows, rowGrain(c))
		return
	}
	affineColsSerial(y, x, a, b, 0, rows, c)
}

func affineColsSerial(y, x, a, b []float32, lo, hi, c int) {
	a = a[:c]
	if b != nil {
		b = b[:c]
	}
	if vec() && hi > lo && c > 0 {
		_, _ = y[hi*c-1], x[hi*c-1]
		var bp *float32
		if b != nil {
			bp = &b[0]
		}
		affineColsAVX512(&y[lo*c], &x[lo*c], &a[0], bp, hi-lo, c)
		return
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		yr := y[r*c : r*c+c]
		yr = yr[:len(xr)]
		a := a[:len(xr)]
		if b == nil {
			for j, v := range xr {
				yr[j] = a[j] * v
			}
			continue
		}
		b := b[:len(xr)]
		for j, v := range xr {
			yr[j] = a[j]*v + b[j]
		}
	}
}

// AffineCols2 sets y[r,j] = a[j]*x[r,j] + b[j]*(z[r,j]-m[j]) + d[j] (m nil
// means 0). Training-mode BatchNorm/RepBN forward (x = z, m = the batch
// mean) and the whole BatchNorm/RepBN input gradient have this form once
// the per-channel reductions are known; subtracting m before scaling keeps
// the result exact when a channel's mean is large against its spread. y
// may alias x or z.
func AffineCols2(y, x, a, z, b, m, d []float32, rows, c int) {
	AffineCols2Res(y, x, a, z, b, m, d, nil, rows, c)
}

// AffineCols2Res is AffineCols2 with res[r,j] added last (res nil: none):
// a BatchNorm input gradient and the residual gradient it joins, in one
// pass. y may alias x, z or res.
func AffineCols2Res(y, x, a, z, b, m, d, res []float32, rows, c int) {
	n := rows * c
	checkLen("AffineCols2", n, y, x, z)
	checkLen("AffineCols2", c, a, b, d)
	if m != nil {
		checkLen("AffineCols2", c, m)
	}
	if res != nil {
		checkLen("AffineCols2", n, res)
	}
	if n >= parallelMin {
		newJob(func(j *job, lo, hi int) {
			affineCols2Serial(j.s[0], j.s[1], j.s[2], j.s[3], j.s[4], j.s[5], j.s[6], j.s[7], lo, hi, j.c)
		}, rows, c, y, x, a, z, b, m, d, res).exec(rows, rowGrain(c))
		return
	}
	affineCols2Serial(y, x, a, z, b, m, d, res, 0, rows, c)
}

func affineCols2Serial(y, x, a, z, b, m, d, res []float32, lo, hi, c int) {
	a, b, d = a[:c], b[:c], d[:c]
	if m != nil {
		m = m[:c]
	}
	if vec() && hi > lo && c > 0 {
		_, _, _ = y[hi*c-1], x[hi*c-1], z[hi*c-1]
		var mp *float32
		if m != nil {
			mp = &m[0]
		}
		if res != nil {
			_ = res[hi*c-1]
			affineCols2ResAVX512(&y[lo*c], &x[lo*c], &a[0], &z[lo*c], &b[0], mp, &d[0], &res[lo*c], hi-lo, c)
			return
		}
		affineCols2AVX512(&y[lo*c], &x[lo*c], &a[0], &z[lo*c], &b[0], mp, &d[0], hi-lo, c)
		return
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		yr, zr := y[r*c:r*c+c], z[r*c:r*c+c]
		yr, zr = yr[:len(xr)], zr[:len(xr)]
		a, b, d := a[:len(xr)], b[:len(xr)], d[:len(xr)]
		var rr []float32
		if res != nil {
			rr = res[r*c : r*c+c]
			rr = rr[:len(xr)]
		}
		switch {
		case m == nil && rr == nil:
			for j, v := range xr {
				yr[j] = a[j]*v + b[j]*zr[j] + d[j]
			}
		case m == nil:
			for j, v := range xr {
				yr[j] = a[j]*v + b[j]*zr[j] + d[j] + rr[j]
			}
		case rr == nil:
			m := m[:len(xr)]
			for j, v := range xr {
				yr[j] = a[j]*v + b[j]*(zr[j]-m[j]) + d[j]
			}
		default:
			m := m[:len(xr)]
			for j, v := range xr {
				yr[j] = a[j]*v + b[j]*(zr[j]-m[j]) + d[j] + rr[j]
			}
		}
	}
}

// epilogueAdd sets c[i,j] = (c[i,j] + bias[j]) + res[i,j] over rows x cols
// of c (row stride ldc) and res (row stride ldr): the bias and residual
// additions of a GEMM epilogue on one tile, in the order applyEpilogue
// performs them, so the result is the same bit for bit. bias or res may be
// nil (no addition). Serial: the GEMM calls it per tile from its workers.
func epilogueAdd(c []float32, ldc, rows, cols int, bias, res []float32, ldr int) {
	if rows <= 0 || cols <= 0 || (bias == nil && res == nil) {
		return
	}
	_ = c[(rows-1)*ldc+cols-1]
	if bias != nil {
		bias = bias[:cols]
	}
	if res != nil {
		_ = res[(rows-1)*ldr+cols-1]
	}
	if vec() {
		var bp, rp *float32
		if bias != nil {
			bp = &bias[0]
		}
		if res != nil {
			rp = &res[0]
		}
		epilogueAddAVX512(&c[0], ldc, rows, cols, bp, rp, ldr)
		return
	}
	for i := 0; i < rows; i++ {
		ci := c[i*ldc : i*ldc+cols]
		if bias != nil {
			for j := range ci {
				ci[j] += bias[j]
			}
		}
		if res != nil {
			r := res[i*ldr : i*ldr+cols]
			for j := range ci {
				ci[j] += r[j]
			}
		}
	}
}

// AddRowVec sets y[r,j] = x[r,j] + v[j] (a bias broadcast over rows); y may
// alias x.
func AddRowVec(y, x, v []float32, rows, c int) {
	n := rows * c
	checkLen("AddRowVec", n, y, x)
	checkLen("AddRowVec", c, v)
	if n >= parallelMin {
		newJob(func(j *job, lo, hi int) { addRowVecSerial(j.s[0], j.s[1], j.s[2], lo, hi, j.c) }, rows, c, y, x, v).exec(rows, rowGrain(c))
		return
	}
	addRowVecSerial(y, x, v, 0, rows, c)
}

func addRowVecSerial(y, x, v []float32, lo, hi, c int) {
	v = v[:c]
	if vec() && hi > lo && c > 0 {
		_, _ = y[hi*c-1], x[hi*c-1]
		addRowVecAVX512(&y[lo*c], &x[lo*c], &v[0], hi-lo, c)
		return
	}
	for r := lo; r < hi; r++ {
		xr := x[r*c : r*c+c]
		yr := y[r*c : r*c+c]
		yr, v := yr[:len(xr)], v[:len(xr)]
		for j, e := range xr {
			yr[j] = e + v[j]
		}
	}
}
