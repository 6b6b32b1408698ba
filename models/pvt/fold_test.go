package pvt

import (
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

// TestFoldConvInput: an unpadded strided conv of (a ⊙ x + b) equals the
// folded conv of x; a padded conv is refused (its border taps read 0, not
// b).
func TestFoldConvInput(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := nn.NewConv2d("block1.0.attn.sr", 6, 5, 2, 2, 0, true)
	fill := func(s []float32, mean, std float64) {
		for i := range s {
			s[i] = float32(mean + std*r.NormFloat64())
		}
	}
	fill(c.Weight.W.Data, 0, 0.3)
	fill(c.Bias.W.Data, 0, 0.3)
	a, b := make([]float32, 6), make([]float32, 6)
	fill(a, 1, 0.3)
	fill(b, 0, 0.3)
	x := tensor.New(2, 4*6, 6)
	fill(x.Data, 0, 1)
	ax := x.Clone()
	for i := range ax.Data {
		ax.Data[i] = a[i%6]*ax.Data[i] + b[i%6]
	}
	want := c.Forward(ax, 4, 6).Clone()
	if err := foldConvInput(c, a, b); err != nil {
		t.Fatal(err)
	}
	reftest.CloseT(t, "folded conv", c.Forward(x, 4, 6), want, reftest.Tol{Rel: 1e-6})
	p := nn.NewConv2d("merge1.conv", 6, 5, 3, 2, 1, true)
	if err := foldConvInput(p, a, b); err == nil {
		t.Error("a padded conv accepted a fold of its input")
	} else {
		t.Log(err)
	}
}
