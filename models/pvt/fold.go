package pvt

import (
	"fmt"

	"github.com/slabml/slab/nn"
)

// convFold is a norm whose output an unpadded convolution also reads (a
// spatial-reduction block's norm1 feeds both q and the sr conv), kept by
// FoldSites and applied by Folded: nn.FoldSite.Into takes Linears only.
type convFold struct {
	norm nn.Norm // the norm itself, held before the folder replaces it
	conv *nn.Conv2d
}

// foldConvInput rewrites c so that c(x) equals the old c(a ⊙ x + b), a and
// b per input channel: W'[o,i,·] = W[o,i,·]·a_i and
// d'_o = d_o + Σ_{i,taps} W[o,i,tap]·b_i. Exact only without padding (a
// padded tap reads 0, not b_i), which the spatial reduction has
// (kernel = stride, no padding).
func foldConvInput(c *nn.Conv2d, a, b []float32) error {
	if c.Pad != 0 {
		return fmt.Errorf("%s: padding %d: a norm before a padded convolution does not fold exactly", c.Weight.Name, c.Pad)
	}
	if len(a) != c.In || len(b) != c.In {
		return fmt.Errorf("%s: affine map of %d/%d channels for a convolution of %d inputs", c.Weight.Name, len(a), len(b), c.In)
	}
	kk := c.Kernel * c.Kernel
	w, d := c.Weight.W.Data, c.Bias.W.Data
	for o := range c.Out {
		var s float64
		for i := range c.In {
			taps := w[(o*c.In+i)*kk : (o*c.In+i+1)*kk]
			for t, v := range taps {
				s += float64(v) * float64(b[i])
				taps[t] = v * a[i]
			}
		}
		d[o] = float32(float64(d[o]) + s)
	}
	c.Weight.MarkChanged()
	c.Bias.MarkChanged()
	return nil
}
