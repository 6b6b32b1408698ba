package nn

import "github.com/slabml/slab/tensor"

// SLA is SLAB's simplified linear attention (SLAB.md 3.1).
type SLA struct {
	QKV, Proj                  *Linear
	PosEnc, DWCWeight, DWCBias *Param
	Heads, H, W, Kernel        int
}

// NewSLA builds name.qkv, name.proj, name.positional_encoding [1,h*w,dim],
// name.dwc.weight [d,1,k,k] and name.dwc.bias [d].
func NewSLA(name string, dim, heads, h, w, kernel int, qkvBias bool) *SLA {
	d := dim / heads
	return &SLA{
		QKV:       NewLinear(name+".qkv", dim, 3*dim, qkvBias),
		Proj:      NewLinear(name+".proj", dim, dim, true),
		PosEnc:    NewParam(name+".positional_encoding", false, 1, h*w, dim),
		DWCWeight: NewParam(name+".dwc.weight", false, d, 1, kernel, kernel),
		DWCBias:   NewParam(name+".dwc.bias", true, d),
		Heads:     heads, H: h, W: w, Kernel: kernel,
	}
}

// Forward maps [B,N,C] tokens (N = H*W) to [B,N,C].
func (s *SLA) Forward(x *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Backward returns dx and accumulates parameter gradients.
func (s *SLA) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params lists all parameters.
func (s *SLA) Params() []*Param {
	ps := append(s.QKV.Params(), s.Proj.Params()...)
	return append(ps, s.PosEnc, s.DWCWeight, s.DWCBias)
}

// Buffers is empty.
func (s *SLA) Buffers() []*Buffer { return nil }
