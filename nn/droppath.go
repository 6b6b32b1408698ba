package nn

import (
	"math/rand/v2"

	"github.com/slabml/slab/tensor"
)

// DropPath drops whole samples of a residual branch, scaling survivors by 1/(1-Rate).
type DropPath struct {
	Rate float32
}

// Forward drops samples of x [B, ...] in training.
func (d *DropPath) Forward(x *tensor.Tensor, train bool, rng *rand.Rand) *tensor.Tensor {
	panic("not implemented")
}

// Backward applies the same mask to dy.
func (d *DropPath) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }
