package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Linear is y = x W^T + b with W [Out, In] in PyTorch's layout. Forward
// keeps a reference to x (not a copy): Linear inputs are other layers'
// output buffers, which stay unchanged until Backward.
type Linear struct {
	Weight, Bias *Param // Bias is nil when the layer has no bias
	In, Out      int

	x      *tensor.Tensor // the input of the last Forward (a reference)
	y, dx  *tensor.Tensor
	yShape []int
}

// NewLinear returns a zero Linear owning name.weight [out,in] and, if bias,
// name.bias [out]; models initialise the values (TruncNormal, Fill).
func NewLinear(name string, in, out int, bias bool) *Linear {
	l := &Linear{Weight: NewParam(name+".weight", false, out, in), In: in, Out: out}
	if bias {
		l.Bias = NewParam(name+".bias", true, out)
	}
	return l
}

func (l *Linear) check(x *tensor.Tensor, want int, what string) {
	if x.Cols() != want {
		panic(fmt.Sprintf("nn.Linear %s: %s %v does not match weight [%d,%d]", l.Weight.Name, what, x.Shape, l.Out, l.In))
	}
}

// Forward maps [..., In] to [..., Out] with one GEMM whose epilogue adds
// the bias.
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	l.check(x, l.In, "input")
	l.x = x
	rows := x.Rows()
	l.yShape = append(l.yShape[:0], x.Shape...)
	l.yShape[len(l.yShape)-1] = l.Out
	y := tensor.Ensure(&l.y, l.yShape...)
	var ep kernels.Epilogue
	if l.Bias != nil {
		ep.Bias = l.Bias.W.Data
	}
	kernels.GemmEpilogue(false, true, rows, l.Out, l.In, x.Data, l.In, l.Weight.W.Data, l.In, y.Data, l.Out, ep)
	return y
}

// Backward accumulates dW += dy^T x and db += column sums of dy, and
// returns dx = dy W.
func (l *Linear) Backward(dy *tensor.Tensor) *tensor.Tensor {
	l.check(dy, l.Out, "gradient")
	x := l.x
	rows := dy.Rows()
	if x == nil || x.Rows() != rows {
		panic(fmt.Sprintf("nn.Linear %s: Backward %v without a matching Forward", l.Weight.Name, dy.Shape))
	}
	kernels.GemmEpilogue(true, false, l.Out, l.In, rows, dy.Data, l.Out, x.Data, l.In, l.Weight.G.Data, l.In, kernels.Epilogue{Accumulate: true})
	if l.Bias != nil {
		kernels.ColSums(l.Bias.G.Data, dy.Data, rows, l.Out)
	}
	dx := tensor.Ensure(&l.dx, x.Shape...)
	kernels.Gemm(false, false, rows, l.In, l.Out, 1, dy.Data, l.Out, l.Weight.W.Data, l.In, 0, dx.Data, l.In)
	return dx
}

// Params returns weight and bias (if any).
func (l *Linear) Params() []*Param {
	if l.Bias == nil {
		return []*Param{l.Weight}
	}
	return []*Param{l.Weight, l.Bias}
}

// Buffers is empty.
func (l *Linear) Buffers() []*Buffer { return nil }
