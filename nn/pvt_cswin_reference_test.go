package nn_test

// The PVT and CSwin layers against our PyTorch reference
// (tools/reference/pvt_cswin_reference.py, fixtures
// testdata/reference/{conv2d,sra,lepe,stripe}_*.safetensors, float64
// results stored as float32), with the normwise tolerances of
// reference_test.go: outputs 1e-5 and gradients 1e-4 of the largest value.

import (
	"testing"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

func TestReferenceConv2d(t *testing.T) {
	for _, name := range []string{"conv2d_stem", "conv2d_merge", "conv2d_sr"} {
		t.Run(name, func(t *testing.T) {
			f := reftest.Load(t, name)
			h, w := int(f.Num("h")), int(f.Num("w"))
			tokens := f.Config["tokens"] == true
			c := nn.NewConv2d("L", int(f.Num("in")), int(f.Num("out")), int(f.Num("kernel")), int(f.Num("stride")), int(f.Num("pad")), tokens)
			fwd := func(x *tensor.Tensor) *tensor.Tensor { return c.Forward(x, h, w) }
			runVJP(t, f, noTrain{c, fwd, c.Backward})
		})
	}
}

func TestReferenceSRA(t *testing.T) {
	for _, name := range []string{"sra_sr2", "sra_sr1"} {
		t.Run(name, func(t *testing.T) {
			f := reftest.Load(t, name)
			dim, h, w := int(f.Num("dim")), int(f.Num("h")), int(f.Num("w"))
			s := nn.NewSRA("L", dim, int(f.Num("heads")), int(f.Num("sr")), true, nn.NewLayerNorm("L.norm", dim, float32(f.Num("ln_eps"))))
			fwd := func(x *tensor.Tensor, mode nn.Mode) *tensor.Tensor { return s.Forward(x, h, w, mode) }
			runVJP(t, f, sraLayer{s, fwd})
		})
	}
}

// sraLayer adapts SRA's Forward (which also takes the map size) to layer.
type sraLayer struct {
	*nn.SRA
	fwd func(*tensor.Tensor, nn.Mode) *tensor.Tensor
}

func (s sraLayer) Forward(x *tensor.Tensor, mode nn.Mode) *tensor.Tensor { return s.fwd(x, mode) }

func TestReferenceLePE(t *testing.T) {
	for _, name := range []string{"lepe_4x6", "lepe_14x7"} {
		t.Run(name, func(t *testing.T) {
			f := reftest.Load(t, name)
			c, h, w := int(f.Num("dim")), int(f.Num("h")), int(f.Num("w"))
			l := nn.NewLePE("L.get_v", c)
			x := f.T("x")
			maps, n := x.Shape[0], h*w
			var y, dx *tensor.Tensor
			fwd := func(x *tensor.Tensor) *tensor.Tensor {
				y = tensor.New(x.Shape...) // LePE adds into its output
				l.Forward(y.Data, c, n*c, x.Data, c, n*c, maps, h, w)
				return y
			}
			bwd := func(dy *tensor.Tensor) *tensor.Tensor {
				dx = tensor.New(dy.Shape...) // and into the V gradient
				l.Backward(dx.Data, dy.Data)
				return dx
			}
			runVJP(t, f, noTrain{l, fwd, bwd})
		})
	}
}

func TestReferenceStripeAttention(t *testing.T) {
	for _, name := range []string{"stripe_2branch", "stripe_global"} {
		t.Run(name, func(t *testing.T) {
			f := reftest.Load(t, name)
			s := nn.NewStripeAttention("L", int(f.Num("dim")), int(f.Num("heads")), int(f.Num("split")), int(f.Num("h")), int(f.Num("w")), true)
			runVJP(t, f, noTrain{s, s.Forward, s.Backward})
		})
	}
}
