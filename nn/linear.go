package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Linear is y = x W^T + b with W [Out, In] in PyTorch's layout. Forward
// keeps a reference to x (not a copy): Linear inputs are other layers'
// output buffers, which stay unchanged until Backward. For evaluation and
// deployment, Prepack lays the weight out once for the GEMM.
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
	l.Weight.lin = &linearPack{}
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
	if p := l.Weight.lin; p != nil && p.qs != nil {
		return l.forwardQ(x, p.qs)
	}
	y := l.output(x)
	rows := x.Rows()
	var ep kernels.Epilogue
	if l.Bias != nil {
		ep.Bias = l.Bias.W.Data
	}
	if p := l.Weight.lin; p != nil && p.on && rows > 1 {
		kernels.GemmPacked(rows, x.Data, l.In, p.get(l.Weight, l.In, l.Out), y.Data, l.Out, ep)
	} else {
		kernels.GemmEpilogue(false, true, rows, l.Out, l.In, x.Data, l.In, l.Weight.W.Data, l.In, y.Data, l.Out, ep)
	}
	return y
}

// ForwardAdd is res + Forward(x) (res shaped as the output), the sum
// formed in the GEMM's epilogue while each tile is in cache: a residual
// connection without its own pass over memory. The bits are Forward's
// followed by kernels.Add. Backward is Forward's.
func (l *Linear) ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor {
	if p := l.Weight.lin; p != nil && p.qs != nil {
		y := l.forwardQ(x, p.qs)
		kernels.Add(y.Data, res.Data, y.Data)
		return y
	}
	y := l.output(x)
	if len(res.Data) != len(y.Data) {
		panic(fmt.Sprintf("nn.Linear %s: residual %v for output %v", l.Weight.Name, res.Shape, y.Shape))
	}
	ep := kernels.Epilogue{Bias: biasData(l), Residual: res.Data}
	l.gemm(x.Rows(), x.Data, y.Data, ep)
	return y
}

// Packed reports whether the weight is prepacked for inference (Prepack,
// and no Backward since): layers around the Linear may then fuse work into
// its GEMM epilogue that a following Backward could not undo.
func (l *Linear) Packed() bool { p := l.Weight.lin; return p != nil && p.on }

// output checks x, keeps it for Backward and returns the output buffer
// [..., Out] for it.
func (l *Linear) output(x *tensor.Tensor) *tensor.Tensor {
	l.check(x, l.In, "input")
	l.x = x
	l.yShape = append(l.yShape[:0], x.Shape...)
	l.yShape[len(l.yShape)-1] = l.Out
	return tensor.Ensure(&l.y, l.yShape...)
}

// linearPack is a Linear weight laid out for the GEMM (kernels.PackedB)
// and what it was built from.
type linearPack struct {
	on    bool // Prepack was called and no Backward since
	valid bool
	ver   uint64   // Param.Version() when packed
	data  *float32 // &W.Data[0] when packed
	pb    kernels.PackedB
	qs    *quantState // the low-precision copy Forward reads (Quantize)
	// decode: read mostly by GEMVs (MarkDecode); short GEMMs keep no
	// packed low-precision copy.
	decode bool
}

// get returns the packed weight, repacking it when W may have changed
// since: its Version moved or it is another tensor.
func (p *linearPack) get(w *Param, in, out int) *kernels.PackedB {
	if !p.valid || p.ver != w.Version() || p.data != &w.W.Data[0] {
		p.pb.Pack(true, in, out, w.W.Data, in)
		p.valid, p.ver, p.data = true, w.Version(), &w.W.Data[0]
	}
	return &p.pb
}

// Prepack makes every Linear among m's parameters pack its weight once
// and reuse it in each Forward: W [Out,In] is the GEMM's transposed
// operand, and re-laying it out per call cost ~15 % of a DeiT-Small
// forward at batch 1. The packed copy takes as much memory again as the
// weights. Results are bit-identical with and without it.
//
// It is meant for evaluation and deployment, after the weights are final.
// The pack is rebuilt when a weight's Version moves (Param.MarkChanged:
// the optimizer, checkpoint loads and fuse call it) or its tensor is
// replaced; a Backward turns packing off for that layer (training has
// resumed), and so does Unpack. Code that writes W in place without
// MarkChanged while packing is on gets results from the old weights.
// Single-row inputs (decoding) always read W as stored, as a GEMV.
func Prepack(m Module) {
	for _, p := range m.Params() {
		if p = p.packTarget(); p.lin != nil && len(p.W.Data) > 0 {
			p.lin.on = true
		}
	}
}

// Unpack turns packing off for every Linear among m's parameters and
// frees the packed copies.
func Unpack(m Module) {
	for _, p := range m.Params() {
		if p = p.packTarget(); p.lin != nil {
			*p.lin = linearPack{qs: p.lin.qs, decode: p.lin.decode}
		}
	}
}

// Backward accumulates dW += dy^T x and db += column sums of dy, and
// returns dx = dy W.
func (l *Linear) Backward(dy *tensor.Tensor) *tensor.Tensor {
	l.check(dy, l.Out, "gradient")
	if p := l.Weight.lin; p != nil && p.qs != nil {
		panic(fmt.Sprintf("nn.Linear %s: Backward through %v weights (quantization is for inference; nn.Quantize(m, kernels.F32) restores float32)", l.Weight.Name, p.qs.dtype))
	}
	if p := l.Weight.lin; p != nil {
		// Training: an optimizer step follows, every step.
		p.on, p.valid = false, false
	}
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
