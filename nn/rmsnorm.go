package nn

import "github.com/slabml/slab/tensor"

// RMSNorm is LLaMA's x / sqrt(mean(x^2)+eps) * weight.
type RMSNorm struct {
	Weight *Param
	Dim    int
	Eps    float32
}

// NewRMSNorm returns an RMSNorm with weight 1.
func NewRMSNorm(name string, dim int, eps float32) *RMSNorm {
	r := &RMSNorm{Weight: NewParam(name+".weight", true, dim), Dim: dim, Eps: eps}
	Fill(r.Weight.W, 1)
	return r
}

// Forward normalises x [..., Dim]; train is ignored.
func (r *RMSNorm) Forward(x *tensor.Tensor, train bool) *tensor.Tensor { panic("not implemented") }

// Backward returns dx and accumulates dweight.
func (r *RMSNorm) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params returns weight.
func (r *RMSNorm) Params() []*Param { return []*Param{r.Weight} }

// Buffers is empty.
func (r *RMSNorm) Buffers() []*Buffer { return nil }
