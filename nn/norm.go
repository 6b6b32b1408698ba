package nn

import "github.com/slabml/slab/tensor"

// Norm is a normalisation over the last (channel) axis of [..., C] tokens:
// LayerNorm, RMSNorm, BatchNorm, RepBN, LinearNorm (PRepBN) or Identity.
// train selects batch statistics and advances schedules; layers without a
// training behaviour ignore it.
type Norm interface {
	Module
	Forward(x *tensor.Tensor, train bool) *tensor.Tensor
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// Identity is the Norm left behind where a fold has removed a norm.
type Identity struct{}

// Forward returns x itself.
func (Identity) Forward(x *tensor.Tensor, train bool) *tensor.Tensor { return x }

// Backward returns dy itself.
func (Identity) Backward(dy *tensor.Tensor) *tensor.Tensor { return dy }

// Params is empty.
func (Identity) Params() []*Param { return nil }

// Buffers is empty.
func (Identity) Buffers() []*Buffer { return nil }
