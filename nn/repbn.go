package nn

import "github.com/slabml/slab/tensor"

// RepBN is BN(x) + alpha*x with one scalar alpha shared by all channels
// (docs/method.md 1.1). It runs as a BatchNorm with a skip weight, so the skip
// costs nothing beyond BatchNorm's single affine pass.
type RepBN struct {
	Alpha *Param
	BN    *BatchNorm
}

// NewRepBN returns a RepBN with alpha = alphaInit and bn.weight = gammaInit
// (vision 1/1, LLaMA 0/0), bn.bias 0 and BN momentum 0.1; parameters
// name.alpha [1] and name.bn.*.
func NewRepBN(name string, dim int, eps float32, alphaInit, gammaInit float32) *RepBN {
	r := &RepBN{Alpha: NewParam(name+".alpha", true, 1), BN: NewBatchNorm(name+".bn", dim, eps, 0.1)}
	r.Alpha.W.Data[0] = alphaInit
	Fill(r.BN.Weight.W, gammaInit)
	return r
}

// Forward is BN(x) + alpha*x, the BN with batch statistics (Train,
// Recalibrate; running statistics updated) or running ones (Eval).
func (r *RepBN) Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor {
	return r.BN.forward(x, mode.batchStats(), r.Alpha.W.Data[0])
}

// Backward returns dx and accumulates dalpha = sum(dy*x) and the BN
// gradients.
func (r *RepBN) Backward(dy *tensor.Tensor) *tensor.Tensor { return r.BackwardAdd(dy, nil) }

// BackwardAdd is Backward returning dx + res (res nil: dx), formed in the
// same pass.
func (r *RepBN) BackwardAdd(dy, res *tensor.Tensor) *tensor.Tensor {
	dx, da := r.BN.backward(dy, res)
	r.Alpha.G.Data[0] += float32(da)
	return dx
}

// ForwardStats updates the BN running statistics only.
func (r *RepBN) ForwardStats(x *tensor.Tensor) { r.BN.ForwardStats(x) }

// Affine returns the eval-mode per-channel map RepBN(x)_c = a_c*x_c + b_c
// of docs/method.md 2.1: a_c = gamma_c/s_c + alpha, b_c = beta_c - gamma_c*mu_c/s_c.
func (r *RepBN) Affine() (a, b []float32) {
	a, b = r.BN.Affine()
	for j := range a {
		a[j] += r.Alpha.W.Data[0]
	}
	return a, b
}

// Params returns alpha, bn.weight, bn.bias.
func (r *RepBN) Params() []*Param { return []*Param{r.Alpha, r.BN.Weight, r.BN.Bias} }

// Buffers returns the BN buffers.
func (r *RepBN) Buffers() []*Buffer { return r.BN.Buffers() }
