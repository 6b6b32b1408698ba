package nn

import (
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// GELU is the exact erf GELU, x*Phi(x) (PyTorch's nn.GELU() default, not
// the tanh approximation). It keeps a reference to its input for Backward.
type GELU struct {
	x, y, dx *tensor.Tensor
}

// Forward applies GELU into a layer-owned buffer.
func (g *GELU) Forward(x *tensor.Tensor) *tensor.Tensor {
	g.x = x
	y := tensor.Ensure(&g.y, x.Shape...)
	kernels.GELU(y.Data, x.Data)
	return y
}

// Backward returns dx = dy*GELU'(x).
func (g *GELU) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if g.x == nil || len(g.x.Data) != len(dy.Data) {
		panic("nn.GELU: Backward " + dy.String() + " without a matching Forward")
	}
	dx := tensor.Ensure(&g.dx, dy.Shape...)
	kernels.GELUBackward(dx.Data, dy.Data, g.x.Data)
	return dx
}
