package kernels

import "math"

// Activations. GELU is the exact-erf form PyTorch's nn.GELU() computes,
// GELU(x) = x*Phi(x), Phi the standard normal CDF. math.Erf works in
// float64 and costs ~20 ns, and even a branch-free float32 erf built from
// exp and a rational approximation is ~75 scalar instructions (~7 ns) in
// Go, which has no SIMD: a ViT-Tiny image would spend longer in GELU than
// PyTorch spends on the whole forward pass. So Phi (and the derivative
// GELU'(x) = Phi(x) + x*phi(x)) is read from a table of cubic Hermite
// segments built at init from math.Erf in float64: 32 segments per unit on
// [-8, 8], 4 coefficients each (8 KiB per table, L1-resident). The Hermite
// remainder is h^4/384*max|f''''| < 1e-8 for both functions, far below
// float32 resolution, so the result is as accurate as a float32 erf while
// costing one table load and three multiply-adds. Beyond +-8, Phi is 0 or 1
// to 1e-15 and the end segments are reused with the position clamped.

const (
	tabLo   = -8.0
	tabStep = 32 // segments per unit of x
	tabN    = 16 * tabStep
)

// cdfTab[i] holds Phi on segment i as c0 + f*(c1 + f*(c2 + f*c3)), f in
// [0,1] the position inside the segment; dgeluTab likewise holds GELU'.
// Entries tabN and tabN+1 are the constant segments below -8 (0) and from
// 8 on (1); the tables are padded to a power of two so that masking the
// index proves it in range.
var cdfTab, dgeluTab [2 * tabN][4]float32

// segBelow and segAbove are the constant segments outside [-8, 8).
const (
	segBelow = tabN
	segAbove = tabN + 1
)

func init() {
	h := 1.0 / tabStep
	pdf := func(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }
	cdf := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	fill := func(tab *[2 * tabN][4]float32, f, df func(float64) float64) {
		for i := range tabN {
			x0 := tabLo + float64(i)*h
			x1 := x0 + h
			f0, f1 := f(x0), f(x1)
			d0, d1 := h*df(x0), h*df(x1)
			tab[i] = [4]float32{float32(f0), float32(d0), float32(3*(f1-f0) - 2*d0 - d1), float32(2*(f0-f1) + d0 + d1)}
		}
	}
	fill(&cdfTab, cdf, pdf)
	cdfTab[segAbove][0] = 1
	dgeluTab[segAbove][0] = 1
	fill(&dgeluTab, func(x float64) float64 { return cdf(x) + x*pdf(x) },
		func(x float64) float64 { return pdf(x) * (2 - x*x) })
}

// segment returns the table segment of x and the position f in it. f is
// taken relative to x*32 (exact: a power-of-two scaling), not to the
// offset x*32+256, which would round x to 1e-6 near 0; when that rounding
// moves k across a segment boundary f comes out a hair below 0 or above 1,
// where the cubic is still accurate. One unsigned compare catches every
// input outside [-8, 8), infinities and NaN (whose integer conversion is
// out of range too): they take the constant segments (Phi = 0 or 1,
// GELU' = 0 or 1; the true values differ by < 1e-15), and NaN becomes f so
// that it propagates through the polynomial.
func segment(x float32) (int32, float32) {
	s := x * tabStep
	k := int32(s - tabLo*tabStep)
	f := s - float32(k+tabLo*tabStep)
	if uint32(k) >= tabN {
		k, f = segBelow, 0
		if s > 0 {
			k = segAbove
		}
		if s != s {
			f = s
		}
	}
	return k, f
}

// GELUValue is the exact-erf GELU of one value, as the slice kernels
// compute it.
func GELUValue(x float32) float32 {
	k, f := segment(x)
	c := &cdfTab[k&(2*tabN-1)] // the mask proves the bound: no check
	return x * (c[0] + f*(c[1]+f*(c[2]+f*c[3])))
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
	for i, v := range x {
		k, f := segment(v)
		c := &cdfTab[k&(2*tabN-1)] // the mask proves the bound: no check
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
	for i, v := range x {
		k, f := segment(v)
		c := &dgeluTab[k&(2*tabN-1)]
		dx[i] = dy[i] * (c[0] + f*(c[1]+f*(c[2]+f*c[3])))
	}
}
