package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// MeanTokens averages tokens [B,N,C] -> [B,C] (SLAB-DeiT's head input,
// instead of a cls token).
type MeanTokens struct {
	n     int
	y, dx *tensor.Tensor
	shp   []int
}

// Forward averages over the token axis.
func (m *MeanTokens) Forward(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 {
		panic(fmt.Sprintf("nn.MeanTokens: input %v, want [B,N,C]", x.Shape))
	}
	b, n, c := x.Shape[0], x.Shape[1], x.Shape[2]
	m.n = n
	y := ensureDims(&m.y, &m.shp, b, c)
	y.Zero()
	for i := 0; i < b; i++ {
		yi := y.Data[i*c : i*c+c]
		kernels.ColSums(yi, x.Data[i*n*c:(i+1)*n*c], n, c)
		if n > 0 {
			kernels.Scale(yi, 1/float32(n), yi)
		}
	}
	return y
}

// Backward spreads dy [B,C] evenly over the N tokens.
func (m *MeanTokens) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if len(dy.Shape) != 2 {
		panic(fmt.Sprintf("nn.MeanTokens: gradient %v, want [B,C]", dy.Shape))
	}
	b, c, n := dy.Shape[0], dy.Shape[1], m.n
	dx := ensureDims(&m.dx, &m.shp, b, n, c)
	inv := 1 / float32(max(n, 1))
	for i := 0; i < b; i++ {
		for t := 0; t < n; t++ {
			kernels.Scale(dx.Data[(i*n+t)*c:(i*n+t+1)*c], inv, dy.Data[i*c:i*c+c])
		}
	}
	return dx
}
