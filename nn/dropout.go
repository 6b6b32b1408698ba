package nn

import (
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Dropout zeroes each element with probability Rate in training and scales
// survivors by 1/(1-Rate); eval or Rate 0 is the identity (returns x). The
// mask is kept as the per-element factor, so Backward is one multiply.
type Dropout struct {
	Rate float32

	mask, y, dx *tensor.Tensor
	ident       bool
}

// Forward applies dropout in training, drawing one rng value per element.
func (d *Dropout) Forward(x *tensor.Tensor, train bool, rng *rand.Rand) *tensor.Tensor {
	if !train || d.Rate <= 0 {
		d.ident = true
		return x
	}
	d.ident = false
	m := tensor.Ensure(&d.mask, x.Shape...)
	keep := 1 - float64(d.Rate)
	var s float32
	if keep > 0 {
		s = float32(1 / keep)
	}
	for i := range m.Data {
		if rng.Float64() < keep {
			m.Data[i] = s
		} else {
			m.Data[i] = 0
		}
	}
	y := tensor.Ensure(&d.y, x.Shape...)
	kernels.Mul(y.Data, x.Data, m.Data)
	return y
}

// Backward applies the same mask to dy.
func (d *Dropout) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if d.ident {
		return dy
	}
	if len(dy.Data) != len(d.mask.Data) {
		panic("nn.Dropout: Backward " + dy.String() + " does not match the last Forward")
	}
	dx := tensor.Ensure(&d.dx, dy.Shape...)
	kernels.Mul(dx.Data, dy.Data, d.mask.Data)
	return dx
}
