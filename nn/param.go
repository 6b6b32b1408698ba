package nn

import "github.com/slabml/slab/tensor"

// Param is a learnable tensor, its gradient, and its official state-dict name.
type Param struct {
	Name string
	W    *tensor.Tensor // value
	G    *tensor.Tensor // gradient, same shape, accumulated by Backward
	// NoDecay excludes the parameter from AdamW weight decay (biases, 1-D
	// norm parameters, alpha, pos_embed, cls_token; docs/method.md 5).
	NoDecay bool

	version uint64      // see MarkChanged
	lin     *linearPack // set on the weight of a Linear (see Prepack)
	of      *Param      // the parameter this one is a row view of (RowView)
	ofRow   int         // the first row of of this view starts at
}

// MarkChanged records that W was written in place other than by the
// layer's own Backward (an optimizer step, a checkpoint load). Caches built
// from W, such as a Linear's packed weight, compare Version to know they
// are stale; code that writes W directly must call it.
func (p *Param) MarkChanged() {
	p.version++
	if p.of != nil {
		p.of.MarkChanged() // a view's rows are the viewed parameter's
	}
}

// packTarget is the parameter whose Linear pack p stands for: the viewed
// parameter for a RowView, p itself otherwise.
func (p *Param) packTarget() *Param {
	if p.of != nil {
		return p.of
	}
	return p
}

// Version counts MarkChanged calls.
func (p *Param) Version() uint64 { return p.version }

// NewParam returns a zero parameter and zero gradient of the given shape.
func NewParam(name string, noDecay bool, shape ...int) *Param {
	return &Param{Name: name, W: tensor.New(shape...), G: tensor.New(shape...), NoDecay: noDecay}
}

// Buffer is non-learnable state that belongs in checkpoints: BatchNorm
// running statistics (F) or the integer schedule counters of LinearNorm and
// num_batches_tracked (I, saved as int64).
type Buffer struct {
	Name string
	F    *tensor.Tensor
	I    *int64
}

// Module is anything that owns parameters and buffers.
type Module interface {
	Params() []*Param
	Buffers() []*Buffer
}

// ZeroGrads clears the gradients of ps.
func ZeroGrads(ps []*Param) {
	for _, p := range ps {
		p.G.Zero()
	}
}
