package kernels

import "math"

// Activations. GELU is the exact-erf form PyTorch's nn.GELU() computes,
// GELU(x) = x*Phi(x), Phi the standard normal CDF. math.Erf works in
// float64 and costs ~20 ns, and even a branch-free float32 erf built from
// exp and a rational approximation is ~75 scalar instructions (~7 ns) in
// Go, which has no SIMD: a ViT-Tiny image would spend longer in GELU than
// PyTorch spends on the whole forward pass. So Phi (and the derivative
// GELU'(x) = Phi(x) + x*phi(x)) is read from a table of cubic Hermite
// segments built at init from math.Erfc in float64: one segment per 1/32
// of x on [-8, 8], centred on the multiples of 1/32, 4 coefficients each
// (8 KiB per table, L1-resident). The Hermite remainder is
// h^4/384*max|f''''| < 1e-8 for both functions, far below float32
// resolution, so the result is as accurate as a float32 erf (relative
// error ~1e-7 where GELU is not tiny, < 1e-5 in the far negative tail)
// while costing one table load and three multiply-adds. Beyond +-8, Phi is
// 0 or 1 to 1e-15 and constant segments take over.

const (
	tabStep = 32              // segments per unit of x
	tabHalf = 8 * tabStep     // segment of x = 0
	tabN    = 2*tabHalf + 1   // centred segments covering [-8-h/2, 8+h/2]
	tabSize = 4 * tabHalf     // table length: a power of two >= tabN+2
	segLow  = tabN            // constant segment below the table (Phi = 0)
	segHigh = tabN + 1        // constant segment above it (Phi = 1)
	magic   = 1.5 * (1 << 23) // adding it rounds a float32 below 2^22 to an integer
)

// cdfTab[k] holds Phi around x = (k-tabHalf)/32 as c0 + u*(c1 + u*(c2 +
// u*c3)), u = 32x - (k-tabHalf) in [-1/2, 1/2]; dgeluTab likewise holds
// GELU'. The length is a power of two so that masking the index proves it
// in range (no bounds check in the loop).
var cdfTab, dgeluTab [tabSize][4]float32

func init() {
	h := 1.0 / tabStep
	pdf := func(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }
	cdf := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	fill := func(tab *[tabSize][4]float32, f, df func(float64) float64) {
		for k := range tabN {
			// Hermite cubic on [x0, x0+h] in g = (x-x0)/h, then
			// re-expanded in u = g - 1/2 around the segment's centre.
			x0 := (float64(k-tabHalf) - 0.5) * h
			f0, f1 := f(x0), f(x0+h)
			d0, d1 := h*df(x0), h*df(x0+h)
			c0, c1, c2, c3 := f0, d0, 3*(f1-f0)-2*d0-d1, 2*(f0-f1)+d0+d1
			tab[k] = [4]float32{float32(c0 + c1/2 + c2/4 + c3/8), float32(c1 + c2 + 3*c3/4), float32(c2 + 3*c3/2), float32(c3)}
		}
		tab[segHigh][0] = 1 // Phi and GELU' are both 1 above the table, 0 below
	}
	fill(&cdfTab, cdf, pdf)
	fill(&dgeluTab, func(x float64) float64 { return cdf(x) + x*pdf(x) },
		func(x float64) float64 { return pdf(x) * (2 - x*x) })
}

// segment returns the table segment of x and the position u in it.
// Adding magic to s = 32x rounds s to the nearest integer n (float32
// integers in [2^23, 2^24) have consecutive bit patterns, so n is a
// subtraction of bits away) with no float-int conversion; u = s - n is
// exact. One unsigned compare catches every input outside [-8, 8],
// infinities and NaN (their bit patterns land far from magic's): they take
// the constant segments, and NaN becomes u so that it propagates through
// the polynomial.
func segment(x float32) (uint32, float32) {
	s := x * tabStep
	t := s + magic
	k := math.Float32bits(t) - math.Float32bits(magic) + tabHalf
	u := s - (t - magic)
	if k >= tabN {
		k, u = segLow, 0
		if s > 0 {
			k = segHigh
		}
		if s != s {
			u = s
		}
	}
	return k, u
}

// GELUValue is the exact-erf GELU of one value, as the pure-Go slice
// kernel computes it.
func GELUValue(x float32) float32 {
	k, f := segment(x)
	if k == segLow && x < 0 {
		return geluTail(x)
	}
	c := &cdfTab[k&(tabSize-1)] // the mask proves the bound: no check
	return x * (c[0] + f*(c[1]+f*(c[2]+f*c[3])))
}

// geluTail and geluGradTail are GELU and GELU' below the table (x < -8),
// from float64 erfc: tiny but normal float32 values (GELU(-12) = -2e-32),
// which the vector kernel also gives, rather than the constant segment's 0;
// like the vector kernel, 0 below -13 (where the values turn subnormal).
// Out-of-table inputs are rare, so the slow path costs nothing measurable.
func geluTail(x float32) float32 {
	if !(x >= -13) {
		return x * 0 // -0, and NaN for -Inf as PyTorch
	}
	v := float64(x)
	return float32(0.5 * v * math.Erfc(-v/math.Sqrt2))
}

func geluGradTail(x float32) float32 {
	if !(x >= -13) {
		return 0
	}
	v := float64(x)
	return float32(0.5*math.Erfc(-v/math.Sqrt2) + v*math.Exp(-v*v/2)/math.Sqrt(2*math.Pi))
}

// GELU sets y = x*Phi(x) over len(y) elements; y may alias x.
func GELU(y, x []float32) {
	n := len(y)
	checkLen("GELU", n, x)
	if n >= parallelMin/4 {
		newJob(func(j *job, lo, hi int) { geluSerial(j.s[0][lo:hi], j.s[1][lo:hi]) }, 0, 0, y, x).exec(n, elemGrain/4)
		return
	}
	geluSerial(y, x)
}

func geluSerial(y, x []float32) {
	x = x[:len(y)]
	if vec() && len(y) > 0 {
		geluAVX512(&y[0], &x[0], len(y))
		return
	}
	for i, v := range x {
		k, f := segment(v)
		if k == segLow && v < 0 {
			y[i] = geluTail(v)
			continue
		}
		c := &cdfTab[k&(tabSize-1)] // the mask proves the bound: no check
		y[i] = v * (c[0] + f*(c[1]+f*(c[2]+f*c[3])))
	}
}

// GELUBackward sets dx = dy * (Phi(x) + x*phi(x)) over len(dx) elements;
// dx may alias dy.
func GELUBackward(dx, dy, x []float32) {
	n := len(dx)
	checkLen("GELUBackward", n, dy, x)
	if n >= parallelMin/4 {
		newJob(func(j *job, lo, hi int) { geluBwdSerial(j.s[0][lo:hi], j.s[1][lo:hi], j.s[2][lo:hi]) }, 0, 0, dx, dy, x).exec(n, elemGrain/4)
		return
	}
	geluBwdSerial(dx, dy, x)
}

func geluBwdSerial(dx, dy, x []float32) {
	dy, x = dy[:len(dx)], x[:len(dx)]
	if vec() && len(dx) > 0 {
		geluBwdAVX512(&dx[0], &dy[0], &x[0], len(dx))
		return
	}
	for i, v := range x {
		k, f := segment(v)
		if k == segLow && v < 0 {
			dx[i] = dy[i] * geluGradTail(v)
			continue
		}
		c := &dgeluTab[k&(tabSize-1)]
		dx[i] = dy[i] * (c[0] + f*(c[1]+f*(c[2]+f*c[3])))
	}
}
