package nn

import "github.com/slabml/slab/tensor"

// RepBN is BN(x) + alpha*x with one scalar alpha (SLAB.md 1.1).
type RepBN struct {
	Alpha *Param
	BN    *BatchNorm
}

// NewRepBN returns a RepBN with the given alpha and gamma initial values, momentum 0.1.
func NewRepBN(name string, dim int, eps float32, alphaInit, gammaInit float32) *RepBN {
	r := &RepBN{Alpha: NewParam(name+".alpha", true, 1), BN: NewBatchNorm(name+".bn", dim, eps, 0.1)}
	r.Alpha.W.Data[0] = alphaInit
	Fill(r.BN.Weight.W, gammaInit)
	return r
}

// Forward is BN(x) + alpha*x.
func (r *RepBN) Forward(x *tensor.Tensor, train bool) *tensor.Tensor { panic("not implemented") }

// Backward returns dx and accumulates dalpha and the BN gradients.
func (r *RepBN) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// ForwardStats updates the BN running statistics only.
func (r *RepBN) ForwardStats(x *tensor.Tensor) { r.BN.ForwardStats(x) }

// Affine returns the eval-mode per-channel map, SLAB.md 2.1.
func (r *RepBN) Affine() (a, b []float32) { panic("not implemented") }

// Params returns alpha, bn.weight, bn.bias.
func (r *RepBN) Params() []*Param { return append([]*Param{r.Alpha}, r.BN.Params()...) }

// Buffers returns the BN buffers.
func (r *RepBN) Buffers() []*Buffer { return r.BN.Buffers() }
