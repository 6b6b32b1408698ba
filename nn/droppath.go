package nn

import (
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// DropPath (stochastic depth, timm semantics) zeroes a residual branch for
// whole samples: in training each sample of x [B, ...] is kept with
// probability 1-Rate and scaled by 1/(1-Rate), so the expectation is
// unchanged; Rate >= 1 drops everything. In eval, or with Rate 0, it is the
// identity and returns x itself. The draws come from the caller's rng (one
// per sample, in order), so a seed fixes the masks.
type DropPath struct {
	Rate float32

	scale []float32 // per-sample factor of the last training Forward
	ident bool      // the last Forward was the identity
	y, dx *tensor.Tensor
}

// Forward drops samples of x [B, ...] in training.
func (d *DropPath) Forward(x *tensor.Tensor, train bool, rng *rand.Rand) *tensor.Tensor {
	if !train || d.Rate <= 0 || len(x.Shape) == 0 {
		d.ident = true
		return x
	}
	d.ident = false
	b := x.Shape[0]
	per := 0
	if b > 0 {
		per = len(x.Data) / b
	}
	keep := 1 - float64(d.Rate)
	d.scale = d.scale[:0]
	for i := 0; i < b; i++ {
		var s float32
		if keep > 0 && rng.Float64() < keep {
			s = float32(1 / keep)
		}
		d.scale = append(d.scale, s)
	}
	y := tensor.Ensure(&d.y, x.Shape...)
	for i, s := range d.scale {
		kernels.Scale(y.Data[i*per:(i+1)*per], s, x.Data[i*per:(i+1)*per])
	}
	return y
}

// Backward applies the last Forward's per-sample factors to dy.
func (d *DropPath) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if d.ident {
		return dy
	}
	b := len(d.scale)
	if len(dy.Shape) == 0 || dy.Shape[0] != b {
		panic("nn.DropPath: Backward " + dy.String() + " does not match the last Forward's batch")
	}
	per := len(dy.Data) / max(b, 1)
	dx := tensor.Ensure(&d.dx, dy.Shape...)
	for i, s := range d.scale {
		kernels.Scale(dx.Data[i*per:(i+1)*per], s, dy.Data[i*per:(i+1)*per])
	}
	return dx
}
