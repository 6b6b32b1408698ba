package nn

import (
	"math/rand/v2"

	"github.com/slabml/slab/tensor"
)

// Dropout zeroes elements with probability Rate, scaling survivors by 1/(1-Rate).
type Dropout struct {
	Rate float32
}

// Forward applies dropout in training.
func (d *Dropout) Forward(x *tensor.Tensor, train bool, rng *rand.Rand) *tensor.Tensor {
	panic("not implemented")
}

// Backward applies the same mask to dy.
func (d *Dropout) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }
