package nn

import "github.com/slabml/slab/tensor"

// PatchEmbed is a Conv2d with kernel = stride = patch and bias.
type PatchEmbed struct {
	Weight, Bias        *Param
	InChans, Dim, Patch int
}

// NewPatchEmbed builds name.weight [dim,inC,p,p] and name.bias [dim].
func NewPatchEmbed(name string, inChans, dim, patch int) *PatchEmbed {
	return &PatchEmbed{
		Weight:  NewParam(name+".weight", false, dim, inChans, patch, patch),
		Bias:    NewParam(name+".bias", true, dim),
		InChans: inChans, Dim: dim, Patch: patch,
	}
}

// Forward maps [B,Cin,H,W] images to [B,(H/p)*(W/p),dim] tokens.
func (p *PatchEmbed) Forward(img *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Backward accumulates weight and bias gradients and returns nil.
func (p *PatchEmbed) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params lists weight and bias.
func (p *PatchEmbed) Params() []*Param { return []*Param{p.Weight, p.Bias} }

// Buffers is empty.
func (p *PatchEmbed) Buffers() []*Buffer { return nil }
