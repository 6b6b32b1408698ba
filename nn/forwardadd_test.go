package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// TestForwardAdd: every ForwardAdd (MLP's by row blocks too) (the residual sum formed in the layer's
// last pass) gives the bits of Forward followed by kernels.Add, with the
// weights as stored and prepacked (where MLP also fuses GELU into fc1 and
// SLA its ReLUs into qkv), on one and two threads.
func TestForwardAdd(t *testing.T) {
	defer kernels.SetThreads(kernels.Threads())
	rng := rand.New(rand.NewPCG(4, 4))
	randT := func(shape ...int) *tensor.Tensor {
		x := tensor.New(shape...)
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64())
		}
		return x
	}
	fill := func(m Module) {
		for _, p := range m.Params() {
			for i := range p.W.Data {
				p.W.Data[i] = float32(rng.NormFloat64() * 0.1)
			}
			p.MarkChanged()
		}
	}
	const dim, heads, g, ws = 32, 2, 8, 4
	lin := NewLinear("lin", dim, 48, true)
	mlp := NewMLP("mlp", dim, 4*dim)
	big := NewMLP("big", dim, 320) // rows >= mlpBlockMin: the blocked pass; hidden > 256: the whole product's k slices
	sla := NewSLA("sla", dim, heads, g, g, 3, true)
	win := NewWindowAttention("win", dim, heads, ws, true)
	rev := NewWindowReverse(g, g, ws, ws/2)
	mask := ShiftMask(g, g, ws, ws/2)
	att := NewAttention("att", dim, heads, true)
	lepe := NewSLALePE("lepe", dim, heads, g, g, 3, true)
	stripe := NewStripeAttention("stripe", dim, heads, 2, g, g, true)
	for _, m := range []Module{lin, mlp, big, sla, win, att, lepe, stripe} {
		fill(m)
	}
	xb := randT(2, 2*mlpBlockMin/2+37, dim) // blocks of mlpBlockRows and a longer last one
	x := randT(2, g*g, dim)
	xw := randT(2*(g/ws)*(g/ws), ws*ws, dim)
	cases := []struct {
		name     string
		fwd, add func() *tensor.Tensor
		res      *tensor.Tensor
	}{
		{"Linear", func() *tensor.Tensor { return lin.Forward(x) }, nil, randT(2, g*g, 48)},
		{"MLP", func() *tensor.Tensor { return mlp.Forward(x) }, nil, randT(2, g*g, dim)},
		{"SLA", func() *tensor.Tensor { return sla.Forward(x) }, nil, randT(2, g*g, dim)},
		{"WindowAttention", func() *tensor.Tensor { return win.Forward(xw, mask) }, nil, randT(xw.Shape...)},
		{"WindowReverse", func() *tensor.Tensor { return rev.Forward(xw) }, nil, randT(2, g*g, dim)},
		{"MLP blocked", func() *tensor.Tensor { return big.Forward(xb) }, nil, randT(xb.Shape...)},
		{"Attention", func() *tensor.Tensor { return att.Forward(x) }, nil, randT(2, g*g, dim)},
		{"SLALePE", func() *tensor.Tensor { return lepe.Forward(x) }, nil, randT(2, g*g, dim)},
		{"StripeAttention", func() *tensor.Tensor { return stripe.Forward(x) }, nil, randT(2, g*g, dim)},
	}
	cases[0].add = func() *tensor.Tensor { return lin.ForwardAdd(x, cases[0].res) }
	cases[1].add = func() *tensor.Tensor { return mlp.ForwardAdd(x, cases[1].res) }
	cases[2].add = func() *tensor.Tensor { return sla.ForwardAdd(x, cases[2].res) }
	cases[3].add = func() *tensor.Tensor { return win.ForwardAdd(xw, mask, cases[3].res) }
	cases[4].add = func() *tensor.Tensor { return rev.ForwardAdd(xw, cases[4].res) }
	cases[5].add = func() *tensor.Tensor { return big.ForwardAdd(xb, cases[5].res) }
	cases[6].add = func() *tensor.Tensor { return att.ForwardAdd(x, cases[6].res) }
	cases[7].add = func() *tensor.Tensor { return lepe.ForwardAdd(x, cases[7].res) }
	cases[8].add = func() *tensor.Tensor { return stripe.ForwardAdd(x, cases[8].res) }
	for _, packed := range []bool{false, true} {
		if packed {
			for _, m := range []Module{lin, mlp, big, sla, win, att, lepe, stripe} {
				Prepack(m)
			}
		}
		for _, threads := range []int{1, 2} {
			kernels.SetThreads(threads)
			for _, c := range cases {
				y := c.fwd()
				want := tensor.New(y.Shape...)
				kernels.Add(want.Data, c.res.Data, y.Data)
				got := c.add()
				if !tensor.SameShape(got, want) {
					t.Fatalf("%s packed=%v: ForwardAdd shape %v, want %v", c.name, packed, got.Shape, want.Shape)
				}
				for i := range got.Data {
					if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
						t.Fatalf("%s packed=%v threads=%d: element %d: %g, Forward+Add %g", c.name, packed, threads, i, got.Data[i], want.Data[i])
					}
				}
			}
		}
	}
	// The fused MLP keeps no GELU input: a Backward must refuse.
	mlp.ForwardAdd(x, cases[1].res)
	defer func() {
		if recover() == nil {
			t.Error("MLP.Backward after a fused ForwardAdd did not panic")
		}
	}()
	mlp.Backward(x)
}
