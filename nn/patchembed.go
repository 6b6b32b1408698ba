package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// PatchEmbed is a Conv2d with kernel = stride = patch and bias, turning
// images [B,Cin,H,W] into tokens [B,(H/p)*(W/p),dim] in row-major patch
// order (PyTorch's proj(x).flatten(2).transpose(1,2)).
//
// Design: patches do not overlap, so im2col is a pure permutation (each
// pixel copied once) and the conv is one GEMM, cols [B·N, Cin·p·p] times
// Wᵀ, whose output is already token-major, with the bias added in the
// GEMM's epilogue. Backward gives only weight and bias gradients: the
// image is the network input and never needs one, so the input gradient is
// skipped and Backward returns nil.
type PatchEmbed struct {
	Weight, Bias        *Param
	InChans, Dim, Patch int

	img, col, out *tensor.Tensor
	c, h, w       int
	gh, gw        int

	im2colFn func(lo, hi int)
}

// NewPatchEmbed builds name.weight [dim,inC,p,p] and name.bias [dim]
// (zeros; models initialise them).
func NewPatchEmbed(name string, inChans, dim, patch int) *PatchEmbed {
	if patch < 1 {
		panic(fmt.Sprintf("nn.NewPatchEmbed(%s): patch %d", name, patch))
	}
	return &PatchEmbed{
		Weight:  NewParam(name+".weight", false, dim, inChans, patch, patch),
		Bias:    NewParam(name+".bias", true, dim),
		InChans: inChans, Dim: dim, Patch: patch,
	}
}

// Forward maps [B,Cin,H,W] images to [B,(H/p)*(W/p),dim] tokens; pixels
// beyond the last whole patch are ignored, as PyTorch's conv does.
func (p *PatchEmbed) Forward(img *tensor.Tensor) *tensor.Tensor {
	if len(img.Shape) != 4 || img.Shape[1] != p.InChans || img.Shape[2] < p.Patch || img.Shape[3] < p.Patch {
		panic(fmt.Sprintf("nn.PatchEmbed(%s): input %v, want [B,%d,H>=%d,W>=%d]", p.Weight.Name, img.Shape, p.InChans, p.Patch, p.Patch))
	}
	if p.im2colFn == nil {
		p.im2colFn = p.im2colTask
	}
	b := img.Shape[0]
	p.img, p.c, p.h, p.w = img, img.Shape[1], img.Shape[2], img.Shape[3]
	p.gh, p.gw = p.h/p.Patch, p.w/p.Patch
	n := p.gh * p.gw
	kd := p.c * p.Patch * p.Patch
	col := tensor.Ensure(&p.col, b*n, kd)
	out := tensor.Ensure(&p.out, b, n, p.Dim)
	kernels.ParallelFor(b*p.gh, 1, p.im2colFn)
	kernels.GemmEpilogue(false, true, b*n, p.Dim, kd, col.Data, kd, p.Weight.W.Data, kd, out.Data, p.Dim,
		kernels.Epilogue{Bias: p.Bias.W.Data})
	return out
}

func (p *PatchEmbed) im2colTask(lo, hi int) {
	n := p.gh * p.gw
	kd := p.c * p.Patch * p.Patch
	for t := lo; t < hi; t++ {
		b, gy := t/p.gh, t%p.gh
		kernels.Im2ColPatches(p.col.Data[b*n*kd:], p.img.Data[b*p.c*p.h*p.w:], p.c, p.h, p.w, p.Patch, gy, gy+1)
	}
}

// Backward accumulates the weight and bias gradients from dy [B,N,dim] and
// returns nil: images need no gradient.
func (p *PatchEmbed) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if p.col == nil {
		panic(fmt.Sprintf("nn.PatchEmbed(%s): Backward before Forward", p.Weight.Name))
	}
	if !tensor.SameShape(dy, p.out) {
		panic(fmt.Sprintf("nn.PatchEmbed(%s): gradient %v, want %v", p.Weight.Name, dy.Shape, p.out.Shape))
	}
	rows, kd := p.col.Shape[0], p.col.Shape[1]
	// dW += dyᵀ · cols
	kernels.Gemm(true, false, p.Dim, kd, rows, 1, dy.Data, p.Dim, p.col.Data, kd, 1, p.Weight.G.Data, kd)
	kernels.ColSums(p.Bias.G.Data, dy.Data, rows, p.Dim)
	return nil
}

// Params lists weight and bias.
func (p *PatchEmbed) Params() []*Param { return []*Param{p.Weight, p.Bias} }

// Buffers is empty.
func (p *PatchEmbed) Buffers() []*Buffer { return nil }
