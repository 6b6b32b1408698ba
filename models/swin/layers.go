package swin

import (
	"fmt"

	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// attention is what a window mixer runs on the windows [B·nW, n, C]: SLA
// or FLatten's focused linear attention (softmax windows take a mask and
// are called directly).
type attention interface {
	nn.Module
	Forward(x *tensor.Tensor) *tensor.Tensor
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// WindowMixer is the token mixer of one Swin block (docs/method.md 4.3):
// cyclic shift and window partition, attention with the windows as the
// batch, window reverse and the inverse shift. When one window covers the
// whole map (no shift then, by the official rule) partition and reverse
// are identities and are skipped, so SLAB-Swin's global SLA stages run SLA
// on the token map directly.
type WindowMixer struct {
	// Window and Shift are the effective window side and shift; H and W the
	// map the mixer is built for.
	Window, Shift, H, W int
	// Softmax is set for window softmax attention ('S' stages), Linear for
	// SLA or focused linear attention ('L' stages).
	Softmax *nn.WindowAttention
	Linear  attention
	// QKV is the attention's input Linear (the fold site of norm1).
	QKV *nn.Linear
	// Mask is the shifted-window mask [nW, n, n] (nil without shift): the
	// official block's attn_mask buffer, rebuilt, never loaded.
	Mask *tensor.Tensor

	part *nn.WindowPartition // nil: one window, no shift
	rev  *nn.WindowReverse
}

// newWindowMixer builds the partition for an h x w map with windows of
// side ws shifted by shift around attention a or softmax attention s.
func newWindowMixer(h, w, ws, shift int, s *nn.WindowAttention, a attention, qkv *nn.Linear) *WindowMixer {
	m := &WindowMixer{Window: ws, Shift: shift, H: h, W: w, Softmax: s, Linear: a, QKV: qkv}
	if ws != h || ws != w || shift != 0 {
		m.part = nn.NewWindowPartition(h, w, ws, shift)
		m.rev = nn.NewWindowReverse(h, w, ws, shift)
	}
	m.Mask = nn.ShiftMask(h, w, ws, shift)
	return m
}

// Forward mixes x [B, H·W, C] on grid g.
func (m *WindowMixer) Forward(x *tensor.Tensor, g backbone.Grid) *tensor.Tensor {
	if g.H != m.H || g.W != m.W {
		panic(fmt.Sprintf("swin: %s: mixer built for a %dx%d map, called on %dx%d", m.QKV.Weight.Name, m.H, m.W, g.H, g.W))
	}
	if m.part != nil {
		x = m.part.Forward(x)
	}
	var y *tensor.Tensor
	if m.Softmax != nil {
		y = m.Softmax.Forward(x, m.Mask)
	} else {
		y = m.Linear.Forward(x)
	}
	if m.rev != nil {
		y = m.rev.Forward(y)
	}
	return y
}

// Backward returns dx for the last Forward and accumulates the attention's
// gradients.
func (m *WindowMixer) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if m.rev != nil {
		dy = m.rev.Backward(dy)
	}
	if m.Softmax != nil {
		dy = m.Softmax.Backward(dy)
	} else {
		dy = m.Linear.Backward(dy)
	}
	if m.part != nil {
		dy = m.part.Backward(dy)
	}
	return dy
}

// Params lists the attention's parameters.
func (m *WindowMixer) Params() []*nn.Param {
	if m.Softmax != nil {
		return m.Softmax.Params()
	}
	return m.Linear.Params()
}

// Buffers is empty: the relative position index and the mask are rebuilt
// from the configuration.
func (m *WindowMixer) Buffers() []*nn.Buffer { return nil }

// PatchMerging is Swin's downsampling step (docs/method.md 4.3): the 2x2
// gather in the official order, a norm over 4C and the reduction
// Linear(4C -> 2C), without bias unless the norm was folded into it. It is
// the official layers.i.downsample, which ends stage i; in the backbone kit
// it is stage i+1's Down.
type PatchMerging struct {
	Norm      nn.Norm
	Reduction *nn.Linear

	gather *nn.PatchMerge
}

// newPatchMerging builds name.norm and name.reduction for an h x w map of
// dim channels.
func newPatchMerging(name string, h, w, dim int, spec nn.NormSpec, bias bool) *PatchMerging {
	return &PatchMerging{
		Norm:      spec.New(name+".norm", 4*dim),
		Reduction: nn.NewLinear(name+".reduction", 4*dim, 2*dim, bias),
		gather:    nn.NewPatchMerge(h, w),
	}
}

// Forward maps [B, H·W, C] on g to [B, H/2·W/2, 2C].
func (p *PatchMerging) Forward(x *tensor.Tensor, g backbone.Grid, mode nn.Mode) (*tensor.Tensor, backbone.Grid) {
	if g.H != p.gather.H || g.W != p.gather.W {
		panic(fmt.Sprintf("swin: %s: built for a %dx%d map, called on %dx%d", p.Reduction.Weight.Name, p.gather.H, p.gather.W, g.H, g.W))
	}
	y := p.Reduction.Forward(p.Norm.Forward(p.gather.Forward(x), mode))
	return y, backbone.Grid{H: g.H / 2, W: g.W / 2}
}

// Backward returns dx for the last Forward.
func (p *PatchMerging) Backward(dy *tensor.Tensor) *tensor.Tensor {
	return p.gather.Backward(p.Norm.Backward(p.Reduction.Backward(dy)))
}

// Params lists the norm's parameters, then the reduction's (the official
// module registers reduction first; state dicts are keyed by name, so the
// order is only the listing's).
func (p *PatchMerging) Params() []*nn.Param {
	return append(append([]*nn.Param(nil), p.Norm.Params()...), p.Reduction.Params()...)
}

// Buffers lists the norm's buffers.
func (p *PatchMerging) Buffers() []*nn.Buffer { return p.Norm.Buffers() }
