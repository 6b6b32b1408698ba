package backbone

import (
	"math/rand/v2"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Downsample turns the tokens of one stage into the next stage's: Swin's
// patch merging, PVT's patch embedding, CSwin's strided convolution. It
// may include its own norm (listed by the family as a norm slot).
type Downsample interface {
	nn.Module
	// Forward maps x [B, g.Tokens(), C] to [B, g'.Tokens(), C'] on the
	// returned grid g'.
	Forward(x *tensor.Tensor, g Grid, mode nn.Mode) (*tensor.Tensor, Grid)
	// Backward returns dx for the last Forward.
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// Stage is an optional downsampling step followed by blocks on one grid.
type Stage struct {
	Down   Downsample // nil: the stage keeps its input's grid
	Blocks []*Block
}

// Forward runs the stage on x over grid g and returns its output and grid.
func (s *Stage) Forward(x *tensor.Tensor, g Grid, mode nn.Mode, rng *rand.Rand) (*tensor.Tensor, Grid) {
	if s.Down != nil {
		x, g = s.Down.Forward(x, g, mode)
	}
	for _, b := range s.Blocks {
		x = b.Forward(x, g, mode, rng)
	}
	return x, g
}

// Backward returns the gradient of the stage's input.
func (s *Stage) Backward(dy *tensor.Tensor) *tensor.Tensor {
	for i := len(s.Blocks) - 1; i >= 0; i-- {
		dy = s.Blocks[i].Backward(dy)
	}
	if s.Down != nil {
		dy = s.Down.Backward(dy)
	}
	return dy
}

// Params lists the downsampling step's parameters, then each block's.
func (s *Stage) Params() []*nn.Param {
	var ps []*nn.Param
	if s.Down != nil {
		ps = append(ps, s.Down.Params()...)
	}
	for _, b := range s.Blocks {
		ps = append(ps, b.Params()...)
	}
	return ps
}

// Buffers lists the buffers in the same order.
func (s *Stage) Buffers() []*nn.Buffer {
	var bs []*nn.Buffer
	if s.Down != nil {
		bs = append(bs, s.Down.Buffers()...)
	}
	for _, b := range s.Blocks {
		bs = append(bs, b.Buffers()...)
	}
	return bs
}

// Stages is a stack of stages that keeps every stage's output: the
// multi-scale features a detection neck reads (strides 4/8/16/32 in Swin).
type Stages struct {
	List  []*Stage
	feats []*tensor.Tensor
	grids []Grid
}

// Forward runs every stage in order and returns the last output and grid.
func (s *Stages) Forward(x *tensor.Tensor, g Grid, mode nn.Mode, rng *rand.Rand) (*tensor.Tensor, Grid) {
	s.feats, s.grids = s.feats[:0], s.grids[:0]
	for _, st := range s.List {
		x, g = st.Forward(x, g, mode, rng)
		s.feats = append(s.feats, x)
		s.grids = append(s.grids, g)
	}
	return x, g
}

// Features returns each stage's output of the last Forward with its grid
// (owned by the blocks, valid until the next Forward).
func (s *Stages) Features() ([]*tensor.Tensor, []Grid) { return s.feats, s.grids }

// Backward returns the gradient of the first stage's input for dy, the
// gradient of the last stage's output.
func (s *Stages) Backward(dy *tensor.Tensor) *tensor.Tensor {
	for i := len(s.List) - 1; i >= 0; i-- {
		dy = s.List[i].Backward(dy)
	}
	return dy
}

// Params lists every stage's parameters in order.
func (s *Stages) Params() []*nn.Param {
	var ps []*nn.Param
	for _, st := range s.List {
		ps = append(ps, st.Params()...)
	}
	return ps
}

// Buffers lists every stage's buffers in order.
func (s *Stages) Buffers() []*nn.Buffer {
	var bs []*nn.Buffer
	for _, st := range s.List {
		bs = append(bs, st.Buffers()...)
	}
	return bs
}
