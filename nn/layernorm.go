package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// LayerNorm normalises each row over the last axis with the biased
// variance: y = (x - mean)/sqrt(var + eps)*weight + bias. A training
// Forward copies x (the residual stream, which models may update in place)
// unless NoCopy is set, and keeps the row statistics for Backward; an eval
// Forward only keeps a reference (inference never differentiates, and the
// copy would cost a sixth of the norm), so a Backward after it needs x left
// unchanged.
type LayerNorm struct {
	Weight, Bias *Param
	Dim          int
	Eps          float32
	// NoCopy keeps a reference to the training input instead of a copy: the
	// caller promises not to change x before Backward (the vit model's
	// residual sums live in per-block buffers).
	NoCopy bool

	x, y, dx   *tensor.Tensor
	xs         *tensor.Tensor // the Forward input Backward reads: x, or the caller's tensor in eval
	mean, rstd *tensor.Tensor
	shp        []int
}

// NewLayerNorm returns a LayerNorm with weight 1 and bias 0 (name.weight,
// name.bias).
func NewLayerNorm(name string, dim int, eps float32) *LayerNorm {
	l := &LayerNorm{Weight: NewParam(name+".weight", true, dim), Bias: NewParam(name+".bias", true, dim), Dim: dim, Eps: eps}
	Fill(l.Weight.W, 1)
	return l
}

func checkDim(layer, name string, x *tensor.Tensor, dim int) {
	if x.Cols() != dim {
		panic(fmt.Sprintf("nn.%s %s: input %v, want last dimension %d", layer, name, x.Shape, dim))
	}
}

// Forward normalises x [..., Dim]; in Train mode it keeps the input for
// Backward.
func (l *LayerNorm) Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor {
	checkDim("LayerNorm", l.Weight.Name, x, l.Dim)
	rows := x.Rows()
	l.xs = keepInput(&l.x, x, mode.Training(), l.NoCopy)
	y := tensor.Ensure(&l.y, x.Shape...)
	mean := ensureDims(&l.mean, &l.shp, rows)
	rstd := ensureDims(&l.rstd, &l.shp, rows)
	kernels.LayerNormForward(y.Data, mean.Data, rstd.Data, x.Data, l.Weight.W.Data, l.Bias.W.Data, rows, l.Dim, l.Eps)
	return y
}

// Backward returns dx and accumulates dweight, dbias.
func (l *LayerNorm) Backward(dy *tensor.Tensor) *tensor.Tensor { return l.BackwardAdd(dy, nil) }

// BackwardAdd is Backward returning dx + res (res nil: dx), the sum formed
// in the same pass (a pre-norm block's residual gradient joining the
// norm's).
func (l *LayerNorm) BackwardAdd(dy, res *tensor.Tensor) *tensor.Tensor {
	checkDim("LayerNorm", l.Weight.Name, dy, l.Dim)
	if l.xs == nil || len(l.xs.Data) != len(dy.Data) {
		panic(fmt.Sprintf("nn.LayerNorm %s: Backward %v without a matching Forward", l.Weight.Name, dy.Shape))
	}
	var rd []float32
	if res != nil {
		checkSame("LayerNorm.Backward", dy, res)
		rd = res.Data
	}
	dx := tensor.Ensure(&l.dx, dy.Shape...)
	kernels.LayerNormBackwardRes(dx.Data, l.Weight.G.Data, l.Bias.G.Data, dy.Data, l.xs.Data, l.mean.Data, l.rstd.Data, l.Weight.W.Data, rd, dy.Rows(), l.Dim)
	return dx
}

// keep is the part of a training Forward that Backward depends on, for a
// caller that computes the output itself (LinearNorm's fused pass): it
// keeps the input and sizes the row statistics, which the caller fills.
func (l *LayerNorm) keep(x *tensor.Tensor) (mean, rstd *tensor.Tensor) {
	checkDim("LayerNorm", l.Weight.Name, x, l.Dim)
	rows := x.Rows()
	l.xs = keepInput(&l.x, x, true, l.NoCopy)
	return ensureDims(&l.mean, &l.shp, rows), ensureDims(&l.rstd, &l.shp, rows)
}

// Params returns weight and bias.
func (l *LayerNorm) Params() []*Param { return []*Param{l.Weight, l.Bias} }

// Buffers is empty.
func (l *LayerNorm) Buffers() []*Buffer { return nil }
