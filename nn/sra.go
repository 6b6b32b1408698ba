package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// SRA is PVT's spatial-reduction attention, the softmax attention of its
// 'S' stages (docs/method.md 3.3, 4.2; official `slab_pvt.py` Attention):
//
//	q = Q(x)                                   all N tokens, C -> C
//	r = Norm(SR(x as an h x w map))            sr > 1: Conv(C, C, k = s = sr)
//	r = x                                      sr = 1
//	[k | v] = KV(r)                            C -> 2C on the M reduced tokens
//	y = Proj(merge_h softmax(q_h k_hᵀ d^-0.5) v_h)
//
// The norm is the model's (LayerNorm, LinearNorm, ...), passed in so that
// the attention does not choose it. Parameter names follow the official
// state dict under name: q, kv, proj, sr, norm (the norm is built by the
// model as name+".norm").
//
// Design: the attention itself is AttnCore reading Q from q's output
// (row stride C) and K, V in place from kv's output (row stride 2C, V at
// column C), so nothing is re-laid out; the reduction conv reads the token
// map as it lies (Conv2d with Tokens). Backward sums the input gradients of
// the query path and the reduction path into a buffer of its own.
type SRA struct {
	Q, KV, Proj *Linear
	SR          *Conv2d // nil when Ratio == 1
	Norm        Norm    // nil when Ratio == 1
	Core        AttnCore
	Ratio       int

	n, m int
	dq   *tensor.Tensor
	dkv  *tensor.Tensor
	dx   *tensor.Tensor
	shp  []int
}

// NewSRA builds the attention of one PVT block at name (e.g.
// "block1.0.attn"): q and kv Linears with bias qkvBias, proj with bias,
// and for ratio > 1 the sr convolution (kernel = stride = ratio) followed
// by norm, which must then be non-nil (ratio 1 ignores it).
func NewSRA(name string, dim, heads, ratio int, qkvBias bool, norm Norm) *SRA {
	if heads < 1 || dim%heads != 0 || ratio < 1 {
		panic(fmt.Sprintf("nn.NewSRA(%s): dim %d, %d heads, ratio %d", name, dim, heads, ratio))
	}
	s := &SRA{
		Q:     NewLinear(name+".q", dim, dim, qkvBias),
		KV:    NewLinear(name+".kv", dim, 2*dim, qkvBias),
		Proj:  NewLinear(name+".proj", dim, dim, true),
		Core:  AttnCore{Heads: heads},
		Ratio: ratio,
	}
	if ratio > 1 {
		if norm == nil {
			panic(fmt.Sprintf("nn.NewSRA(%s): ratio %d needs a norm", name, ratio))
		}
		s.SR = NewConv2d(name+".sr", dim, dim, ratio, ratio, 0, true)
		s.Norm = norm
	}
	return s
}

// Forward maps tokens x [B, h*w, C] of an h x w map to [B, h*w, C].
// mode is passed to the reduction norm.
func (s *SRA) Forward(x *tensor.Tensor, h, w int, mode Mode) *tensor.Tensor {
	c := s.Q.In
	if len(x.Shape) != 3 || x.Shape[1] != h*w || x.Shape[2] != c {
		panic(fmt.Sprintf("nn.SRA(%s): input %v, want [B,%d*%d,%d]", s.Q.Weight.Name, x.Shape, h, w, c))
	}
	b := x.Shape[0]
	q := s.Q.Forward(x)
	r := x
	if s.SR != nil {
		r = s.Norm.Forward(s.SR.Forward(x, h, w), mode)
	}
	kv := s.KV.Forward(r)
	s.n, s.m = h*w, r.Shape[1]
	o := s.Core.Forward(b, s.n, s.m, c, q.Data, c, s.n*c, kv.Data, 2*c, s.m*2*c, kv.Data[c:], 2*c, s.m*2*c)
	return s.Proj.Forward(o)
}

// Backward returns dx and accumulates every parameter gradient (the norm's
// included).
func (s *SRA) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if s.n == 0 {
		panic(fmt.Sprintf("nn.SRA(%s): Backward before Forward", s.Q.Weight.Name))
	}
	c := s.Q.In
	do := s.Proj.Backward(dy)
	b := do.Shape[0]
	dq := ensureDims(&s.dq, &s.shp, b, s.n, c)
	dkv := ensureDims(&s.dkv, &s.shp, b, s.m, 2*c)
	s.Core.Backward(do, dq.Data, dkv.Data, dkv.Data[c:])
	dxq := s.Q.Backward(dq)
	dr := s.KV.Backward(dkv)
	if s.SR != nil {
		dr = s.SR.Backward(s.Norm.Backward(dr))
	}
	dx := ensureDims(&s.dx, &s.shp, dxq.Shape...)
	kernels.Add(dx.Data, dxq.Data, dr.Data)
	return dx
}

// Params lists q, kv, proj, then sr and the norm's (ratio > 1).
func (s *SRA) Params() []*Param {
	ps := append(append(s.Q.Params(), s.KV.Params()...), s.Proj.Params()...)
	if s.SR != nil {
		ps = append(append(ps, s.SR.Params()...), s.Norm.Params()...)
	}
	return ps
}

// Buffers lists the norm's buffers (running statistics, schedule).
func (s *SRA) Buffers() []*Buffer {
	if s.Norm == nil {
		return nil
	}
	return s.Norm.Buffers()
}
