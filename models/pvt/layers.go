package pvt

import (
	"fmt"

	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// SLAMixer is SLAB-PVT's attention (docs/method.md 3.1-3.2): SLA over all
// tokens of the stage (spatial reduction 1). The official module has two
// input Linears, q (C -> C) and kv (C -> 2C, [k | v]); stacked they are
// exactly SLA's one qkv Linear [q | k | v], so the mixer runs nn.SLA and
// exposes Q and KV as views of the rows of SLA's qkv weight, bias and
// gradients: the official names load, train and fold in place with no
// copy. Q and KV are never run themselves.
type SLAMixer struct {
	SLA   *nn.SLA
	Q, KV *nn.Linear
}

// newSLAMixer builds name.{q,kv,proj,positional_encoding,dwc} for an h x w
// map.
func newSLAMixer(name string, dim, heads, h, w, kernel int) *SLAMixer {
	s := nn.NewSLA(name, dim, heads, h, w, kernel, true)
	return &SLAMixer{SLA: s, Q: nn.RowView(name+".q", s.QKV, 0, dim), KV: nn.RowView(name+".kv", s.QKV, dim, 2*dim)}
}

// Forward runs SLA on x [B, H*W, C] on grid g.
func (m *SLAMixer) Forward(x *tensor.Tensor, g backbone.Grid) *tensor.Tensor {
	if g.H != m.SLA.H || g.W != m.SLA.W {
		panic(fmt.Sprintf("pvt: %s: built for a %dx%d map, called on %dx%d", m.Q.Weight.Name, m.SLA.H, m.SLA.W, g.H, g.W))
	}
	return m.SLA.Forward(x)
}

// ForwardAdd is res + Forward(x, g), formed in proj's epilogue
// (backbone.AddMixer).
func (m *SLAMixer) ForwardAdd(x *tensor.Tensor, g backbone.Grid, res *tensor.Tensor) *tensor.Tensor {
	if g.H != m.SLA.H || g.W != m.SLA.W {
		panic(fmt.Sprintf("pvt: %s: built for a %dx%d map, called on %dx%d", m.Q.Weight.Name, m.SLA.H, m.SLA.W, g.H, g.W))
	}
	return m.SLA.ForwardAdd(x, res)
}

// Backward returns dx and accumulates the gradients (into the views'
// storage).
func (m *SLAMixer) Backward(dy *tensor.Tensor) *tensor.Tensor { return m.SLA.Backward(dy) }

// Params lists q, kv (the views), proj, positional_encoding and dwc.
func (m *SLAMixer) Params() []*nn.Param {
	s := m.SLA
	return append(append(append(m.Q.Params(), m.KV.Params()...), s.Proj.Params()...), s.PosEnc, s.DWCWeight, s.DWCBias)
}

// Buffers is empty.
func (m *SLAMixer) Buffers() []*nn.Buffer { return nil }

// dropGrads frees the gradient storage the views share.
func (m *SLAMixer) dropGrads() {
	m.SLA.QKV.Weight.G, m.SLA.QKV.Bias.G = nil, nil
}

// SRAMixer is PVT's spatial-reduction attention as a block mixer. The
// reduction norm needs the pass's mode, which Mixer.Forward does not
// carry: the model sets *Mode before each Forward.
type SRAMixer struct {
	SRA  *nn.SRA
	Mode *nn.Mode
}

// Forward runs SRA on x [B, H*W, C] on grid g.
func (m *SRAMixer) Forward(x *tensor.Tensor, g backbone.Grid) *tensor.Tensor {
	return m.SRA.Forward(x, g.H, g.W, *m.Mode)
}

// Backward returns dx and accumulates every gradient.
func (m *SRAMixer) Backward(dy *tensor.Tensor) *tensor.Tensor { return m.SRA.Backward(dy) }

// Params lists SRA's.
func (m *SRAMixer) Params() []*nn.Param { return m.SRA.Params() }

// Buffers lists the reduction norm's.
func (m *SRAMixer) Buffers() []*nn.Buffer { return m.SRA.Buffers() }

var _ backbone.AddMixer = (*SLAMixer)(nil)
var _ backbone.Mixer = (*SRAMixer)(nil)
