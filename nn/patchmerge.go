package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// PatchMerge is the 2x2 gather of Swin's patch merging (docs/method.md
// 4.3): tokens [B, H*W, C] of an H x W map become [B, (H/2)*(W/2), 4C],
// output token (i, j) holding, on consecutive channel blocks, the inputs
// at (2i, 2j), (2i+1, 2j), (2i, 2j+1), (2i+1, 2j+1): the official
// cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
// x[:, 1::2, 1::2]], -1) (note the row offset varies fastest). The norm
// over 4C and the reduction Linear(4C -> 2C, no bias) that follow are
// separate layers, composed by the model (norms come from its factory).
//
// Design: a pure permutation of C-float rows, so forward and backward are
// row copies, each output (or input-gradient) row written by one task.
type PatchMerge struct {
	H, W int

	y, dx    *tensor.Tensor
	src, dst *tensor.Tensor
	b, c     int
	fwd      bool
	fn       func(lo, hi int)
}

// NewPatchMerge builds the gather for an h x w map (both even; the
// classification models' maps are, padding belongs to the caller).
func NewPatchMerge(h, w int) *PatchMerge {
	if h < 2 || w < 2 || h%2 != 0 || w%2 != 0 {
		panic(fmt.Sprintf("nn.NewPatchMerge: map %dx%d, want even sides", h, w))
	}
	return &PatchMerge{H: h, W: w}
}

// Forward maps [B, H*W, C] to [B, H/2*W/2, 4C].
func (m *PatchMerge) Forward(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 || x.Shape[1] != m.H*m.W {
		panic(fmt.Sprintf("nn.PatchMerge: input %v, want [B,%d,C]", x.Shape, m.H*m.W))
	}
	b, c := x.Shape[0], x.Shape[2]
	y := tensor.Ensure(&m.y, b, m.H/2*(m.W/2), 4*c)
	m.run(x, y, b, c, true)
	return y
}

// Backward maps dy [B, H/2*W/2, 4C] to dx [B, H*W, C].
func (m *PatchMerge) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if m.y == nil || !tensor.SameShape(dy, m.y) {
		panic(fmt.Sprintf("nn.PatchMerge: gradient %v does not match the last Forward's output", dy.Shape))
	}
	b, c := m.b, m.c
	dx := tensor.Ensure(&m.dx, b, m.H*m.W, c)
	m.run(dy, dx, b, c, false)
	return dx
}

func (m *PatchMerge) run(src, dst *tensor.Tensor, b, c int, fwd bool) {
	if m.fn == nil {
		m.fn = m.task
	}
	m.src, m.dst, m.b, m.c, m.fwd = src, dst, b, c, fwd
	kernels.ParallelFor(b*(m.H/2)*(m.W/2), 64, m.fn)
}

// task handles output tokens [lo, hi) (over all images): four row copies
// each, out of the map (forward) or back into it (backward).
func (m *PatchMerge) task(lo, hi int) {
	c, ow := m.c, m.W/2
	no := (m.H / 2) * ow
	s, d := m.src.Data, m.dst.Data
	for t := lo; t < hi; t++ {
		b, o := t/no, t%no
		i, j := o/ow, o%ow
		for q := 0; q < 4; q++ {
			// q = 0..3: (row, col) offsets (0,0), (1,0), (0,1), (1,1)
			in := b*m.H*m.W + (2*i+q%2)*m.W + 2*j + q/2
			if m.fwd {
				copy(d[t*4*c+q*c:t*4*c+(q+1)*c], s[in*c:(in+1)*c])
			} else {
				copy(d[in*c:(in+1)*c], s[t*4*c+q*c:t*4*c+(q+1)*c])
			}
		}
	}
}
