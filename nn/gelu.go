package nn

import "github.com/slabml/slab/tensor"

// GELU is the exact erf GELU.
type GELU struct{}

// Forward applies GELU.
func (g *GELU) Forward(x *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Backward returns dx.
func (g *GELU) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }
