package backbone

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// ConvEmbed is a convolutional Downsample: a convolution (PVT's patch
// embeddings, kernel = stride; CSwin's stem and stage merges, padded and
// overlapping), its norm, and optionally a learned position embedding
// [1, N', C'] added after the norm (PVT's pos_embed{i}). The first stage's
// ConvEmbed reads images [B, In, H, W] (Conv.Tokens false, the grid being
// the image size); later ones read the previous stage's token map.
//
// The norm reads the convolution's output only, so it folds into the
// convolution exactly (nn.FoldSite From; docs/method.md 2.1), the
// position embedding being added after it either way.
type ConvEmbed struct {
	Conv *nn.Conv2d
	Norm nn.Norm
	Pos  *nn.Param // nil: no position embedding

	out *tensor.Tensor
	b   int
}

// Forward maps x on g to the convolution's token map [B, OH*OW, Out].
func (e *ConvEmbed) Forward(x *tensor.Tensor, g Grid, mode nn.Mode) (*tensor.Tensor, Grid) {
	oh, ow := e.Conv.OutSize(g.H, g.W)
	y := e.Norm.Forward(e.Conv.Forward(x, g.H, g.W), mode)
	if e.Pos == nil {
		return y, Grid{H: oh, W: ow}
	}
	n := oh * ow * e.Conv.Out
	if e.Pos.W.Size() != n {
		panic(fmt.Sprintf("backbone.ConvEmbed: %s %v does not fit a %dx%d map of %d channels", e.Pos.Name, e.Pos.W.Shape, oh, ow, e.Conv.Out))
	}
	e.b = y.Shape[0]
	out := tensor.Ensure(&e.out, y.Shape...)
	for i := range e.b {
		kernels.Add(out.Data[i*n:(i+1)*n], y.Data[i*n:(i+1)*n], e.Pos.W.Data)
	}
	return out, Grid{H: oh, W: ow}
}

// Backward returns dx (nil for images when Conv.NoInputGrad) and
// accumulates the gradients of the convolution, the norm and the position
// embedding (summed over the batch in image order: thread-count
// independent).
func (e *ConvEmbed) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if e.Pos != nil {
		n := e.Pos.W.Size()
		kernels.ColSumsStrided(e.Pos.G.Data, dy.Data, e.b, n, n)
	}
	return e.Conv.Backward(e.Norm.Backward(dy))
}

// Params lists the convolution's, the norm's and the position embedding.
func (e *ConvEmbed) Params() []*nn.Param {
	ps := append(append([]*nn.Param(nil), e.Conv.Params()...), e.Norm.Params()...)
	if e.Pos != nil {
		ps = append(ps, e.Pos)
	}
	return ps
}

// Buffers lists the norm's.
func (e *ConvEmbed) Buffers() []*nn.Buffer { return e.Norm.Buffers() }

// FoldSite folds the norm into the convolution producing its input.
func (e *ConvEmbed) FoldSite(name string) nn.FoldSite {
	return nn.FoldSite{Slot: nn.NormSlot{Name: name, Norm: &e.Norm}, FromWeight: e.Conv.Weight, FromBias: e.Conv.Bias}
}
