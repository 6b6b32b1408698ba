package nn_test

// Layer-by-layer agreement with our PyTorch reference
// (tools/reference/reference.py, fixtures in testdata/reference, computed in
// float64 and stored as float32).
//
// Tolerances are normwise (reftest package doc): forward outputs 1e-5 of the
// largest output, gradients 1e-4 of the largest gradient. Why these: a
// float32 layer on 16 channels makes ~1e-7 relative error per operation
// (eps 6e-8) and the fixtures are exact, so 1e-5 leaves two orders of
// magnitude for accumulation order while still catching any wrong constant
// (eps, momentum, a 1/(M-1) for M) which shows up at >=1e-3. Gradients go
// through centred sums (BatchNorm and LayerNorm subtract means, softmax
// subtracts its row dot product), which cancel and lose digits relative to
// the largest term, hence one order more.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

var (
	fwdTol  = reftest.Tol{Rel: 1e-5}
	gradTol = reftest.Tol{Rel: 1e-4, Abs: 1e-7}
)

// refName maps a slab parameter name built under prefix "L" to the fixture's
// module-relative name.
func refName(name string) string { return strings.TrimPrefix(name, "L.") }

// loadRefParams copies param/NAME of the fixture into every parameter of m
// and zeroes the gradients.
func loadRefParams(t *testing.T, f *reftest.Fixture, m nn.Module) {
	t.Helper()
	for _, p := range m.Params() {
		want := f.T("param/" + refName(p.Name))
		if want.Size() != p.W.Size() {
			t.Fatalf("%s: shape %v, fixture %v", p.Name, p.W.Shape, want.Shape)
		}
		copy(p.W.Data, want.Data)
		p.G.Zero()
	}
}

// loadRefBuffers copies prefix+NAME into float buffers and integer counters.
func loadRefBuffers(t *testing.T, f *reftest.Fixture, m nn.Module, prefix string) {
	t.Helper()
	for _, b := range m.Buffers() {
		key := prefix + refName(b.Name)
		if !f.Has(key) {
			continue
		}
		if b.I != nil {
			*b.I = f.Ints(key)[0]
		} else {
			copy(b.F.Data, f.T(key).Data)
		}
	}
}

func checkGrads(t *testing.T, f *reftest.Fixture, m nn.Module, prefix string) {
	t.Helper()
	for _, p := range m.Params() {
		reftest.CloseT(t, "d"+refName(p.Name), p.G, f.T(prefix+refName(p.Name)), gradTol)
	}
}

func checkBuffers(t *testing.T, f *reftest.Fixture, m nn.Module, prefix string) {
	t.Helper()
	for _, b := range m.Buffers() {
		key := prefix + refName(b.Name)
		if !f.Has(key) {
			t.Errorf("fixture has no %s", key)
			continue
		}
		if b.I != nil {
			if got, want := *b.I, f.Ints(key)[0]; got != want {
				t.Errorf("%s = %d, want %d", b.Name, got, want)
			}
			continue
		}
		reftest.CloseT(t, refName(b.Name), b.F, f.T(key), fwdTol)
	}
}

// layer is the common shape of a layer with a train flag.
type layer interface {
	nn.Module
	Forward(x *tensor.Tensor, mode nn.Mode) *tensor.Tensor
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// noTrain adapts a layer without a train flag.
type noTrain struct {
	nn.Module
	fwd func(*tensor.Tensor) *tensor.Tensor
	bwd func(*tensor.Tensor) *tensor.Tensor
}

func (n noTrain) Forward(x *tensor.Tensor, _ nn.Mode) *tensor.Tensor { return n.fwd(x) }
func (n noTrain) Backward(dy *tensor.Tensor) *tensor.Tensor          { return n.bwd(dy) }

// runVJP loads params, runs one training forward and backward and compares
// y, dx and every gradient.
func runVJP(t *testing.T, f *reftest.Fixture, l layer) {
	t.Helper()
	loadRefParams(t, f, l)
	loadRefBuffers(t, f, l, "param/") // BN running stats are stored with the params
	y := l.Forward(f.T("x"), nn.Train)
	reftest.CloseT(t, "y", y, f.T("y"), fwdTol)
	dx := l.Backward(f.T("dy"))
	if dx != nil {
		reftest.CloseT(t, "dx", dx, f.T("dx"), gradTol)
	}
	checkGrads(t, f, l, "grad/")
}

func TestReferenceLayerNorm(t *testing.T) {
	f := reftest.Load(t, "layernorm")
	runVJP(t, f, nn.NewLayerNorm("L", int(f.Num("dim")), float32(f.Num("eps"))))
}

func TestReferenceBatchNorms(t *testing.T) {
	for _, kind := range []string{"repbn", "batchnorm"} {
		t.Run(kind, func(t *testing.T) {
			f := reftest.Load(t, kind)
			dim, eps := int(f.Num("dim")), float32(f.Num("eps"))
			var l layer
			if kind == "repbn" {
				l = nn.NewRepBN("L", dim, eps, 1, 1)
			} else {
				l = nn.NewBatchNorm("L", dim, eps, float32(f.Num("momentum")))
			}
			runVJP(t, f, l)
			// momentum 0.1 update with the unbiased batch variance
			checkBuffers(t, f, l, "after/buffer/")
			reftest.CloseT(t, "y_eval", l.Forward(f.T("x_eval"), nn.Eval), f.T("y_eval"), fwdTol)
		})
	}
}

func TestReferenceLinearNorm(t *testing.T) {
	f := reftest.Load(t, "linearnorm")
	dim := int(f.Num("dim"))
	l := nn.NewLinearNorm("L", nn.NewLayerNorm("L.norm1", dim, float32(f.Num("ln_eps"))),
		nn.NewRepBN("L.norm2", dim, float32(f.Num("bn_eps")), 1, 1), int64(f.Num("warm")), int64(f.Num("step")))
	loadRefParams(t, f, l)
	loadRefBuffers(t, f, l, "param/")
	lambdas := f.T("lambdas").Data
	for i := 0; i < int(f.Num("calls")); i++ {
		t.Run(fmt.Sprintf("call%d", i+1), func(t *testing.T) {
			p := fmt.Sprintf("call%d/", i)
			if got, want := l.Lambda(), float64(lambdas[i]); got != want {
				t.Errorf("Lambda() before call %d = %v, want %v", i+1, got, want)
			}
			nn.ZeroGrads(l.Params())
			reftest.CloseT(t, "y", l.Forward(f.T(p+"x"), nn.Train), f.T(p+"y"), fwdTol)
			reftest.CloseT(t, "dx", l.Backward(f.T(p+"dy")), f.T(p+"dx"), gradTol)
			checkGrads(t, f, l, p+"grad/")
			checkBuffers(t, f, l, p+"buffer/")
		})
	}
	reftest.CloseT(t, "eval y (RepBN only)", l.Forward(f.T("eval/x"), nn.Eval), f.T("eval/y"), fwdTol)
}

func TestReferenceMLP(t *testing.T) {
	f := reftest.Load(t, "mlp")
	m := nn.NewMLP("L", int(f.Num("dim")), int(f.Num("hidden")))
	runVJP(t, f, noTrain{m, m.Forward, m.Backward})
}

func TestReferenceAttention(t *testing.T) {
	f := reftest.Load(t, "attention")
	a := nn.NewAttention("L", int(f.Num("dim")), int(f.Num("heads")), true)
	runVJP(t, f, noTrain{a, a.Forward, a.Backward})
}

func TestReferenceSLA(t *testing.T) {
	for _, grid := range []string{"3x5", "7x7"} {
		t.Run(grid, func(t *testing.T) {
			f := reftest.Load(t, "sla_"+grid)
			s := nn.NewSLA("L", int(f.Num("dim")), int(f.Num("heads")), int(f.Num("h")), int(f.Num("w")),
				int(f.Num("kernel")), true)
			runVJP(t, f, noTrain{s, s.Forward, s.Backward})
		})
	}
}

func TestReferencePatchEmbed(t *testing.T) {
	f := reftest.Load(t, "patchembed")
	p := nn.NewPatchEmbed("L.proj", int(f.Num("in_chans")), int(f.Num("dim")), int(f.Num("patch")))
	runVJP(t, f, noTrain{p, p.Forward, p.Backward}) // Backward returns nil: images need no gradient
}

func TestReferenceCrossEntropy(t *testing.T) {
	f := reftest.Load(t, "crossentropy")
	ce := &nn.CrossEntropy{Smoothing: float32(f.Num("smoothing"))}
	loss := ce.Forward(f.T("logits"), f.Labels("labels"))
	reftest.Close(t, "loss", reftest.F32(loss), f.T("loss").Data, fwdTol)
	reftest.CloseT(t, "dlogits", ce.Backward(), f.T("dlogits"), gradTol)
}
