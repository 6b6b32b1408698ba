package kernels

import "math"

// AdamWStep holds the per-step scalars of the AdamW update rule, as float32
// values computed once per step by the optimizer.
type AdamWStep struct {
	Decay      float32 // 1 - lr*weight_decay, or 1 for parameters without decay
	Beta1      float32
	OneMinusB1 float32 // 1 - Beta1, rounded to float32 once
	Beta2      float32
	OneMinusB2 float32
	StepSize   float32 // lr / (1 - beta1^t)
	InvSqrtBC2 float32 // 1 / sqrt(1 - beta2^t)
	Eps        float32
}

// AdamW applies one AdamW update to w with gradient g and moments m, v (all
// of len(w)), in PyTorch's operation order: w *= Decay; m = b1*m + (1-b1)*g;
// v = b2*v + (1-b2)*g*g; w -= StepSize*m / (sqrt(v)*InvSqrtBC2 + Eps). The
// AVX-512 kernel performs the same float32 operations as the Go loop
// (sqrt and division are correctly rounded in both), so both paths give
// identical bits. Serial: the optimizer splits parameters across threads.
func AdamW(w, g, m, v []float32, s *AdamWStep) {
	n := len(w)
	checkLen("AdamW", n, g, m, v)
	if n == 0 {
		return
	}
	if vec() {
		adamwAVX512(&w[0], &g[0], &m[0], &v[0], n, &s.Decay)
		return
	}
	g, m, v = g[:n], m[:n], v[:n]
	for j := range w {
		gj := g[j]
		w[j] *= s.Decay
		mj := s.Beta1*m[j] + s.OneMinusB1*gj
		vj := s.Beta2*v[j] + s.OneMinusB2*gj*gj
		m[j], v[j] = mj, vj
		denom := float32(math.Sqrt(float64(vj)))*s.InvSqrtBC2 + s.Eps
		w[j] -= s.StepSize * mj / denom
	}
}

// SumSquares returns sum x[i]^2 accumulated in float64 (the global
// gradient norm of clipping). The AVX-512 kernel sums in eight-lane
// float64 partials, so its last bits differ from the serial Go loop's;
// each path is deterministic.
func SumSquares(x []float32) float64 {
	if len(x) == 0 {
		return 0
	}
	if vec() {
		return sumSqAVX512(&x[0], len(x))
	}
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0 += a * a
	}
	return (s0 + s1) + (s2 + s3)
}
