package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// Helpers shared by the basic-layer tests (linear, norms, MLP, ...).

// randT returns a tensor of standard normal values scaled by s.
func blRand(seed uint64, s float32, shape ...int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 11))
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = s * float32(r.NormFloat64())
	}
	return t
}

func blTo64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// dotLoss is the scalar sum(y*w): its gradient with respect to y is w, so
// Backward(w) must give the gradient of blDotLoss(ref(...)).
func blDotLoss(y []float64, w []float32) float64 {
	var s float64
	for i, v := range y {
		s += v * float64(w[i])
	}
	return s
}

// numGradSampled is numGrad restricted to at most n evenly spread indices
// (large shapes cost O(size^2) otherwise); it returns the indices and the
// gradients there.
func blNumGradSampled(f func(x []float64) float64, x []float64, n int, eps float64) ([]int, []float64) {
	if len(x) <= n {
		g := numGrad(f, x, eps)
		idx := make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
		return idx, g
	}
	idx := make([]int, n)
	g := make([]float64, n)
	for k := range idx {
		i := k * (len(x) - 1) / (n - 1)
		idx[k] = i
		old := x[i]
		x[i] = old + eps
		fp := f(x)
		x[i] = old - eps
		fm := f(x)
		x[i] = old
		g[k] = (fp - fm) / (2 * eps)
	}
	return idx, g
}

// checkGrad compares an analytic gradient with the sampled numerical one.
func blCheckGrad(t *testing.T, name string, got []float32, f func(x []float64) float64, at []float32, rtol, atol float64) {
	t.Helper()
	idx, want := blNumGradSampled(f, blTo64(at), 48, 1e-4)
	sub := make([]float32, len(idx))
	for k, i := range idx {
		sub[k] = got[i]
	}
	assertClose(t, name, sub, want, rtol, atol)
}

func TestTruncNormalUniformFill(t *testing.T) {
	for _, std := range []float64{0.02, 1, 3} {
		x := tensor.New(200000)
		TruncNormal(x, std, rand.New(rand.NewPCG(1, 2)))
		var s, ss float64
		for _, v := range x.Data {
			if v < -2 || v > 2 {
				t.Fatalf("TruncNormal std %g: value %g outside [-2,2]", std, v)
			}
			s += float64(v)
			ss += float64(v) * float64(v)
		}
		n := float64(len(x.Data))
		sd := math.Sqrt(ss/n - (s/n)*(s/n))
		// Standard deviation of the normal truncated at +-2 (absolute).
		a := 2 / std
		phi := math.Exp(-a*a/2) / math.Sqrt(2*math.Pi)
		z := math.Erf(a / math.Sqrt2)
		want := std * math.Sqrt(1-2*a*phi/z)
		t.Logf("TruncNormal std %g: mean %.3g sd %.5g want %.5g", std, s/n, sd, want)
		if math.Abs(sd-want) > 0.01*want || math.Abs(s/n) > 0.01*std {
			t.Fatalf("TruncNormal std %g: sd %g (want %g), mean %g", std, sd, want, s/n)
		}
		y := tensor.New(200000)
		TruncNormal(y, std, rand.New(rand.NewPCG(1, 2)))
		for i := range x.Data {
			if x.Data[i] != y.Data[i] {
				t.Fatalf("TruncNormal is not reproducible from the seed at %d", i)
			}
		}
	}
	u := tensor.New(100000)
	Uniform(u, 0.5, rand.New(rand.NewPCG(3, 4)))
	lo, hi := float32(1), float32(-1)
	var s float64
	for _, v := range u.Data {
		lo, hi = min(lo, v), max(hi, v)
		s += float64(v)
	}
	if lo < -0.5 || hi >= 0.5 || lo > -0.49 || hi < 0.49 || math.Abs(s/1e5) > 0.005 {
		t.Fatalf("Uniform(0.5): range [%g,%g], mean %g", lo, hi, s/1e5)
	}
	Fill(u, 2.5)
	for _, v := range u.Data {
		if v != 2.5 {
			t.Fatalf("Fill: %g", v)
		}
	}
}
