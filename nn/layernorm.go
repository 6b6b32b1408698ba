package nn

import "github.com/slabml/slab/tensor"

// LayerNorm normalises each row over the last axis with the biased variance.
type LayerNorm struct {
	Weight, Bias *Param
	Dim          int
	Eps          float32
}

// NewLayerNorm returns a LayerNorm with weight 1 and bias 0.
func NewLayerNorm(name string, dim int, eps float32) *LayerNorm {
	l := &LayerNorm{Weight: NewParam(name+".weight", true, dim), Bias: NewParam(name+".bias", true, dim), Dim: dim, Eps: eps}
	Fill(l.Weight.W, 1)
	return l
}

// Forward normalises x [..., Dim]; train is ignored.
func (l *LayerNorm) Forward(x *tensor.Tensor, train bool) *tensor.Tensor { panic("not implemented") }

// Backward returns dx and accumulates dweight, dbias.
func (l *LayerNorm) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params returns weight and bias.
func (l *LayerNorm) Params() []*Param { return []*Param{l.Weight, l.Bias} }

// Buffers is empty.
func (l *LayerNorm) Buffers() []*Buffer { return nil }
