package nn

import "github.com/slabml/slab/tensor"

// Norm is a normalisation over the last (channel) axis of [..., C] tokens:
// LayerNorm, RMSNorm, BatchNorm, RepBN, LinearNorm (PRepBN) or Identity.
// mode selects batch or running statistics and whether schedules advance
// (see Mode); layers without a training behaviour ignore it.
type Norm interface {
	Module
	Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// BackwardAdder is a Norm whose backward pass can add a residual
// gradient to its input gradient in the same pass over memory.
type BackwardAdder interface {
	// BackwardAdd returns dx + res (res nil: dx) in a layer-owned buffer
	// and accumulates the parameter gradients, as Backward.
	BackwardAdd(dy, res *tensor.Tensor) *tensor.Tensor
}

// NormBackwardAdd returns n's input gradient for dy plus res: in one pass
// when n is a BackwardAdder, else Backward followed by an add into *buf.
func NormBackwardAdd(n Norm, dy, res *tensor.Tensor, buf **tensor.Tensor) *tensor.Tensor {
	if a, ok := n.(BackwardAdder); ok {
		return a.BackwardAdd(dy, res)
	}
	if res == nil {
		return n.Backward(dy)
	}
	return AddInto(buf, res, n.Backward(dy))
}

// Identity is the Norm left behind where a fold has removed a norm.
type Identity struct{}

// Forward returns x itself.
func (Identity) Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor { return x }

// Backward returns dy itself.
func (Identity) Backward(dy *tensor.Tensor) *tensor.Tensor { return dy }

// Params is empty.
func (Identity) Params() []*Param { return nil }

// Buffers is empty.
func (Identity) Buffers() []*Buffer { return nil }
