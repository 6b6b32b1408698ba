package swin

import (
	"fmt"

	"github.com/slabml/slab/kernels"

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
//
// In the detection layout (Config.Det) the mixer follows the grid it is
// called on: the map is zero-padded on the right and bottom to a multiple
// of the window (after norm1, as the official detection block pads), then
// shifted and partitioned, and the output is cropped back; linear attention
// runs without the shift mask, as the official SLAB detection code does.
// Partition, mask and padding are rebuilt when the grid changes (a
// steady-state forward at one size allocates nothing).
type WindowMixer struct {
	// Window and Shift are the effective window side and shift; H and W the
	// map the mixer is built for (in the detection layout, the last one it
	// was called on).
	Window, Shift, H, W int
	// Det selects the detection layout.
	Det bool
	// Softmax is set for window softmax attention ('S' stages), Linear for
	// SLA or focused linear attention ('L' stages).
	Softmax *nn.WindowAttention
	Linear  attention
	// QKV is the attention's input Linear (the fold site of norm1).
	QKV *nn.Linear
	// Mask is the shifted-window mask [nW, n, n] (nil without shift, and
	// for linear attention in the detection layout): the official block's
	// attn_mask buffer, rebuilt, never loaded.
	Mask *tensor.Tensor

	part *nn.WindowPartition // nil: one window, no shift
	rev  *nn.WindowReverse

	hp, wp     int            // the padded map (H, W without padding)
	pad, dcrop *tensor.Tensor // padded input, gradient of the cropped output
	crop, dpad *tensor.Tensor // cropped output, gradient of the padded input
	sum        *tensor.Tensor // ForwardAdd's output when no layer forms it
}

// newWindowMixer builds the partition for an h x w map with windows of
// side ws shifted by shift around attention a or softmax attention s.
func newWindowMixer(h, w, ws, shift int, det bool, s *nn.WindowAttention, a attention, qkv *nn.Linear) *WindowMixer {
	m := &WindowMixer{Window: ws, Shift: shift, Det: det, Softmax: s, Linear: a, QKV: qkv}
	m.layout(h, w)
	return m
}

// layout builds partition, reverse and mask for an h x w map.
func (m *WindowMixer) layout(h, w int) {
	ws, shift := m.Window, m.Shift
	m.H, m.W, m.hp, m.wp = h, w, h, w
	if m.Det {
		m.hp, m.wp = (h+ws-1)/ws*ws, (w+ws-1)/ws*ws
	}
	m.part, m.rev = nil, nil
	if ws != m.hp || ws != m.wp || shift != 0 {
		m.part = nn.NewWindowPartition(m.hp, m.wp, ws, shift)
		m.rev = nn.NewWindowReverse(m.hp, m.wp, ws, shift)
	}
	m.Mask = nil
	if !m.Det || m.Softmax != nil {
		m.Mask = nn.ShiftMask(m.hp, m.wp, ws, shift)
	}
}

func (m *WindowMixer) padded() bool { return m.hp != m.H || m.wp != m.W }

// padMap copies x [B, H·W, C] into the top-left corner of a zero
// [B, hp·wp, C] map (or back: crop), row by row.
func (m *WindowMixer) padMap(x *tensor.Tensor, buf **tensor.Tensor, crop bool) *tensor.Tensor {
	b, c := x.Shape[0], x.Shape[2]
	big, small := m.hp*m.wp, m.H*m.W
	if crop {
		y := tensor.Ensure(buf, b, small, c)
		for i := range b {
			for r := range m.H {
				src := x.Data[(i*big+r*m.wp)*c:]
				copy(y.Data[(i*small+r*m.W)*c:(i*small+(r+1)*m.W)*c], src[:m.W*c])
			}
		}
		return y
	}
	y := tensor.Ensure(buf, b, big, c)
	y.Zero()
	for i := range b {
		for r := range m.H {
			copy(y.Data[(i*big+r*m.wp)*c:(i*big+r*m.wp+m.W)*c], x.Data[(i*small+r*m.W)*c:(i*small+(r+1)*m.W)*c])
		}
	}
	return y
}

// Forward mixes x [B, H·W, C] on grid g.
func (m *WindowMixer) Forward(x *tensor.Tensor, g backbone.Grid) *tensor.Tensor {
	if g.H != m.H || g.W != m.W {
		if !m.Det {
			panic(fmt.Sprintf("swin: %s: mixer built for a %dx%d map, called on %dx%d", m.QKV.Weight.Name, m.H, m.W, g.H, g.W))
		}
		m.layout(g.H, g.W)
	}
	if m.padded() {
		x = m.padMap(x, &m.pad, false)
	}
	if m.part != nil {
		x = m.part.Forward(x)
	}
	y := m.attend(x)
	if m.rev != nil {
		y = m.rev.Forward(y)
	}
	if m.padded() {
		y = m.padMap(y, &m.crop, true)
	}
	return y
}

// ForwardAdd is res + Forward(x, g) (backbone.AddMixer): formed by the
// window reverse when the map is partitioned, else by the attention's proj
// epilogue (one global window: SLAB-Swin's SLA stages, Swin's 7x7 stage 4),
// and by a separate sum only in the padded detection layout or for an
// attention without ForwardAdd.
func (m *WindowMixer) ForwardAdd(x *tensor.Tensor, g backbone.Grid, res *tensor.Tensor) *tensor.Tensor {
	if m.Det || g.H != m.H || g.W != m.W {
		return m.sumInto(m.Forward(x, g), res)
	}
	if m.part != nil {
		return m.rev.ForwardAdd(m.attend(m.part.Forward(x)), res)
	}
	if m.Softmax != nil {
		return m.Softmax.ForwardAdd(x, m.Mask, res)
	}
	if a, ok := m.Linear.(interface {
		ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor
	}); ok {
		return a.ForwardAdd(x, res)
	}
	return m.sumInto(m.Linear.Forward(x), res)
}

// attend runs the attention, window softmax (with the shift mask) or
// linear, on windows x.
func (m *WindowMixer) attend(x *tensor.Tensor) *tensor.Tensor {
	if m.Softmax != nil {
		return m.Softmax.Forward(x, m.Mask)
	}
	return m.Linear.Forward(x)
}

// sumInto returns res + y in the mixer's own buffer.
func (m *WindowMixer) sumInto(y, res *tensor.Tensor) *tensor.Tensor {
	s := tensor.Ensure(&m.sum, y.Shape...)
	kernels.Add(s.Data, res.Data, y.Data)
	return s
}

// Backward returns dx for the last Forward and accumulates the attention's
// gradients.
func (m *WindowMixer) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if m.padded() {
		dy = m.padMap(dy, &m.dcrop, false) // the crop's adjoint: zero gradient on padding
	}
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
	if m.padded() {
		dy = m.padMap(dy, &m.dpad, true) // the padding's adjoint
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
	det    bool // the detection layout: any even map
}

// newPatchMerging builds name.norm and name.reduction for an h x w map of
// dim channels.
func newPatchMerging(name string, h, w, dim int, spec nn.NormSpec, bias, det bool) *PatchMerging {
	return &PatchMerging{det: det,
		Norm:      spec.New(name+".norm", 4*dim),
		Reduction: nn.NewLinear(name+".reduction", 4*dim, 2*dim, bias),
		gather:    nn.NewPatchMerge(h, w),
	}
}

// Forward maps [B, H·W, C] on g to [B, H/2·W/2, 2C].
func (p *PatchMerging) Forward(x *tensor.Tensor, g backbone.Grid, mode nn.Mode) (*tensor.Tensor, backbone.Grid) {
	if (g.H != p.gather.H || g.W != p.gather.W) && p.det && g.H%2 == 0 && g.W%2 == 0 && g.H > 0 && g.W > 0 {
		p.gather.H, p.gather.W = g.H, g.W // the detection layout follows the input (even maps: inputs are multiples of 32)
	}
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
