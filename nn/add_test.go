package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// TestBasicLayersNoAlloc runs each basic layer's Forward+Backward twice to
// size its buffers, then requires zero allocations per step, on a small
// shape (serial kernels) and a large one (kernels split across the worker
// pool), with one and two threads.
func TestBasicLayersNoAlloc(t *testing.T) {
	type step func()
	for _, rows := range []int{17, 1568} {
		const c = 192
		x := blRand(1, 1, 1, rows, c)
		if rows >= 8 {
			x = blRand(1, 1, 8, rows/8, c)
		}
		dy := blRand(2, 1, x.Shape...)
		rng := rand.New(rand.NewPCG(1, 2))
		lin := NewLinear("l", c, c, true)
		ln := NewLayerNorm("ln", c, 1e-6)
		rms := NewRMSNorm("rms", c, 1e-6)
		rb := NewRepBN("rb", c, 1e-5, 1, 1)
		lnorm := NewLinearNorm("n", NewLayerNorm("n.norm1", c, 1e-6), NewRepBN("n.norm2", c, 1e-5, 1, 1), 0, 1000)
		mlp := NewMLP("mlp", c, 2*c)
		dp := &DropPath{Rate: 0.1}
		do := &Dropout{Rate: 0.1}
		var mt MeanTokens
		ce := &CrossEntropy{Smoothing: 0.1}
		labels := make([]int, x.Shape[0])
		var sum *tensor.Tensor
		steps := map[string]step{
			"Linear":     func() { lin.Forward(x); lin.Backward(dy) },
			"LayerNorm":  func() { ln.Forward(x, Train); ln.Backward(dy) },
			"RMSNorm":    func() { rms.Forward(x, Train); rms.Backward(dy) },
			"RepBN":      func() { rb.Forward(x, Train); rb.Backward(dy) },
			"RepBNEval":  func() { rb.Forward(x, Eval); rb.Backward(dy) },
			"LinearNorm": func() { lnorm.Forward(x, Train); lnorm.Backward(dy) },
			"MLP":        func() { mlp.Forward(x); mlp.Backward(dy) },
			"MLPInfer":   func() { mlp.Infer(x) },
			"DropPath":   func() { dp.Forward(x, true, rng); dp.Backward(dy) },
			"Dropout":    func() { do.Forward(x, true, rng); do.Backward(dy) },
			"MeanTokens+CE": func() {
				p := mt.Forward(x)
				ce.Forward(p, labels)
				mt.Backward(ce.Backward())
			},
			"Residual": func() { AddInto(&sum, x, dy); AddInPlace(sum, x) },
		}
		for _, th := range []int{1, 2} {
			for name, f := range steps {
				t.Run(fmt.Sprintf("%s_rows%d_threads%d", name, rows, th), func(t *testing.T) {
					prev := kernels.Threads()
					kernels.SetThreads(th)
					defer kernels.SetThreads(prev)
					f()
					f()
					if a := testing.AllocsPerRun(5, f); a != 0 {
						t.Fatalf("%s: %g allocations per step", name, a)
					}
				})
			}
		}
	}
}

func TestResidualHelpers(t *testing.T) {
	a, b := blRand(1, 1, 3, 17), blRand(2, 1, 3, 17)
	var out *tensor.Tensor
	y := AddInto(&out, a, b)
	want := make([]float64, len(a.Data))
	for i := range want {
		want[i] = float64(a.Data[i]) + float64(b.Data[i])
	}
	assertClose(t, "AddInto", y.Data, want, 1e-7, 0)
	c := a.Clone()
	AddInPlace(c, b)
	assertClose(t, "AddInPlace", c.Data, want, 1e-7, 0)
	c = a.Clone()
	AddScaledInPlace(c, -0.5, b)
	for i := range want {
		want[i] = float64(a.Data[i]) - 0.5*float64(b.Data[i])
	}
	assertClose(t, "AddScaledInPlace", c.Data, want, 1e-6, 1e-7)
}
