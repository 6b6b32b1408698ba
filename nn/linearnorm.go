package nn

import "github.com/slabml/slab/tensor"

// LinearNorm is PRepBN's progressive mix lambda*Norm1 + (1-lambda)*Norm2 (SLAB.md 1.2, 6.1).
type LinearNorm struct {
	Norm1                          Norm
	Norm2                          *RepBN
	Warm, Iter, TotalStep, NumStep int64
	R0                             float64
	Every                          int64
	name                           string
}

// NewLinearNorm returns the vision schedule (Every = 1, no num_step buffer).
func NewLinearNorm(name string, norm1 Norm, norm2 *RepBN, warm, step int64) *LinearNorm {
	return &LinearNorm{Norm1: norm1, Norm2: norm2, Warm: warm, Iter: step, TotalStep: step, R0: 1, Every: 1, name: name}
}

// NewLinearNormLLaMA returns the LLaMA schedule (Every = 16, num_step buffer).
func NewLinearNormLLaMA(name string, norm1 Norm, norm2 *RepBN, warm, step int64) *LinearNorm {
	return &LinearNorm{Norm1: norm1, Norm2: norm2, Warm: warm, Iter: step, TotalStep: step, R0: 1, Every: 16, name: name}
}

// Lambda is the lambda the next training call will use.
func (l *LinearNorm) Lambda() float64 { panic("not implemented") }

// Forward mixes the two norms in training and is Norm2 in eval.
func (l *LinearNorm) Forward(x *tensor.Tensor, train bool) *tensor.Tensor { panic("not implemented") }

// Backward differentiates the last Forward.
func (l *LinearNorm) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params returns norm1's then norm2's parameters.
func (l *LinearNorm) Params() []*Param { return append(l.Norm1.Params(), l.Norm2.Params()...) }

// Buffers returns the schedule counters and the norms' buffers.
func (l *LinearNorm) Buffers() []*Buffer { panic("not implemented") }
