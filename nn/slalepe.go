package nn

import (
	"fmt"

	"github.com/slabml/slab/tensor"
)

// SLALePE is SLAB-CSwin's linear attention (docs/method.md 3.2, the
// official `slab_cswin.py` LA branch): SLA with its DWC, plus LePE (the
// branch's `get_v`, a 3x3 depthwise conv over all C channels of V) added
// to the merged-head output before proj:
//
//	y = proj( SLA_core(q, k, v) + LePE(v) )
//
// Design: SLA's own pipeline (forwardCore/backwardCore) with LePE adding
// into the core's output buffer in place and its input gradient adding
// into the V columns of the qkv gradient, so nothing is copied. The core's
// backward reads its saved intermediates (num, z, ReLU(Q), ReLU(K+P)),
// never the output buffer LePE added into. Scale is the official branch's
// unused `scale` [1,1,C] parameter, kept so state dicts and parameter
// counts match; it receives no gradient.
type SLALePE struct {
	*SLA
	LePE  *LePE
	Scale *Param
}

// NewSLALePE builds NewSLA(name, ...) plus name+".get_v" (LePE over dim
// channels) and name+".scale" [1,1,dim] (zeros).
func NewSLALePE(name string, dim, heads, h, w, kernel int, qkvBias bool) *SLALePE {
	return &SLALePE{
		SLA:   NewSLA(name, dim, heads, h, w, kernel, qkvBias),
		LePE:  NewLePE(name+".get_v", dim),
		Scale: NewParam(name+".scale", false, 1, 1, dim),
	}
}

// Forward maps [B,N,C] tokens (N = H*W) to [B,N,C].
func (s *SLALePE) Forward(x *tensor.Tensor) *tensor.Tensor {
	return s.Proj.Forward(s.attendLePE(x))
}

// ForwardAdd is res + Forward(x), the residual added in proj's epilogue.
// It must be defined here: the embedded SLA's ForwardAdd, promoted,
// would skip LePE.
func (s *SLALePE) ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor {
	return s.Proj.ForwardAdd(s.attendLePE(x), res)
}

// attendLePE is Forward up to proj: SLA's attention plus LePE of V.
func (s *SLALePE) attendLePE(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 || x.Shape[1] != s.H*s.W || x.Shape[2] != s.QKV.In {
		panic(fmt.Sprintf("nn.SLALePE(%s): input %v, want [B,%d,%d]", s.PosEnc.Name, x.Shape, s.H*s.W, s.QKV.In))
	}
	b, n, c := x.Shape[0], s.H*s.W, s.QKV.In
	qkv := s.QKV.Forward(x)
	o := s.forwardCore(qkv)
	s.LePE.Forward(o.Data, c, n*c, qkv.Data[2*c:], 3*c, n*3*c, b, s.H, s.W)
	return o
}

// Backward returns dx and accumulates every gradient (SLA's and LePE's).
func (s *SLALePE) Backward(dy *tensor.Tensor) *tensor.Tensor {
	do := s.Proj.Backward(dy)
	dqkv := s.backwardCore(do)
	s.LePE.Backward(dqkv.Data[2*s.c:], do.Data)
	return s.QKV.Backward(dqkv)
}

// Params lists SLA's parameters, then get_v's and scale.
func (s *SLALePE) Params() []*Param {
	return append(append(s.SLA.Params(), s.LePE.Params()...), s.Scale)
}

// Buffers is empty.
func (s *SLALePE) Buffers() []*Buffer { return nil }
