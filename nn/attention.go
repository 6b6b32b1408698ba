package nn

import "github.com/slabml/slab/tensor"

// Attention is standard ViT multi-head softmax attention (SLAB.md 3.3, DeiT).
type Attention struct {
	QKV, Proj *Linear
	Heads     int
}

// NewAttention builds name.qkv (dim -> 3*dim, [q|k|v]) and name.proj.
func NewAttention(name string, dim, heads int, qkvBias bool) *Attention {
	return &Attention{QKV: NewLinear(name+".qkv", dim, 3*dim, qkvBias), Proj: NewLinear(name+".proj", dim, dim, true), Heads: heads}
}

// Forward maps [B,N,C] tokens to [B,N,C].
func (a *Attention) Forward(x *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Backward returns dx and accumulates parameter gradients.
func (a *Attention) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params lists qkv then proj parameters.
func (a *Attention) Params() []*Param { return append(a.QKV.Params(), a.Proj.Params()...) }

// Buffers is empty.
func (a *Attention) Buffers() []*Buffer { return nil }
