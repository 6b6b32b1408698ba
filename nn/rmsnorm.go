package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// RMSNorm is LLaMA's y = x / sqrt(mean(x^2) + eps) * weight (no mean
// subtraction, no bias). Like LayerNorm it copies x for Backward in
// training and keeps a reference in eval.
type RMSNorm struct {
	Weight *Param
	Dim    int
	Eps    float32

	x, y, dx *tensor.Tensor
	xs       *tensor.Tensor
	rrms     *tensor.Tensor
	shp      []int
}

// NewRMSNorm returns an RMSNorm with weight 1 (name.weight).
func NewRMSNorm(name string, dim int, eps float32) *RMSNorm {
	r := &RMSNorm{Weight: NewParam(name+".weight", true, dim), Dim: dim, Eps: eps}
	Fill(r.Weight.W, 1)
	return r
}

// Forward normalises x [..., Dim]; in Train mode it keeps the input for
// Backward.
func (r *RMSNorm) Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor {
	checkDim("RMSNorm", r.Weight.Name, x, r.Dim)
	rows := x.Rows()
	r.xs = keepInput(&r.x, x, mode.Training(), false)
	y := tensor.Ensure(&r.y, x.Shape...)
	rr := ensureDims(&r.rrms, &r.shp, rows)
	kernels.RMSNormForward(y.Data, rr.Data, x.Data, r.Weight.W.Data, rows, r.Dim, r.Eps)
	return y
}

// Backward returns dx and accumulates dweight.
func (r *RMSNorm) Backward(dy *tensor.Tensor) *tensor.Tensor {
	checkDim("RMSNorm", r.Weight.Name, dy, r.Dim)
	if r.xs == nil || len(r.xs.Data) != len(dy.Data) {
		panic(fmt.Sprintf("nn.RMSNorm %s: Backward %v without a matching Forward", r.Weight.Name, dy.Shape))
	}
	dx := tensor.Ensure(&r.dx, dy.Shape...)
	kernels.RMSNormBackward(dx.Data, r.Weight.G.Data, dy.Data, r.xs.Data, r.rrms.Data, r.Weight.W.Data, dy.Rows(), r.Dim)
	return dx
}

// Params returns weight.
func (r *RMSNorm) Params() []*Param { return []*Param{r.Weight} }

// Buffers is empty.
func (r *RMSNorm) Buffers() []*Buffer { return nil }
