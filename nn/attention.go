package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Attention is standard ViT multi-head softmax attention (SLAB.md 3.3,
// DeiT-PRepBN): [Q|K|V] = qkv(x), per head softmax(Q Kᵀ · d^-0.5) V, heads
// merged, proj. No mask, no dropout.
//
// Design: Q, K, V are read in place from the qkv activation (row stride
// 3C) by kernels.GemmStrided, one call per head over the batch, so heads
// are never packed. The scale rides in the QKᵀ GEMM's alpha (forward) and
// in the softmax backward pass (backward). Probabilities are kept for
// Backward ([B,h,N,N]: 118 MB per image at N = 3136; that is what softmax
// attention costs and why SLA exists); the backward needs only one N x N
// scratch per head, reused across heads.
type Attention struct {
	QKV, Proj *Linear
	Heads     int

	qkv            *tensor.Tensor // QKV's output, not owned
	att, o         *tensor.Tensor // probabilities [B,h,N,N], merged heads [B,N,C]
	dp, dqkv, dout *tensor.Tensor
	b, n, c, d     int
	scale          float32
	cur            []float32 // probabilities of the head being differentiated

	softmaxFn, softmaxBackFn func(lo, hi int)
}

// NewAttention builds name.qkv (dim -> 3*dim, [q|k|v]) and name.proj
// (dim -> dim, with bias).
func NewAttention(name string, dim, heads int, qkvBias bool) *Attention {
	if heads <= 0 || dim%heads != 0 {
		panic(fmt.Sprintf("nn.NewAttention(%s): dim %d not divisible by %d heads", name, dim, heads))
	}
	return &Attention{QKV: NewLinear(name+".qkv", dim, 3*dim, qkvBias), Proj: NewLinear(name+".proj", dim, dim, true), Heads: heads}
}

// Forward maps [B,N,C] tokens to [B,N,C].
func (a *Attention) Forward(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 || x.Shape[2] != a.QKV.In {
		panic(fmt.Sprintf("nn.Attention(%s): input %v, want [B,N,%d]", a.QKV.Weight.Name, x.Shape, a.QKV.In))
	}
	return a.Proj.Forward(a.forwardCore(a.QKV.Forward(x)))
}

// Backward returns dx and accumulates parameter gradients.
func (a *Attention) Backward(dy *tensor.Tensor) *tensor.Tensor {
	return a.QKV.Backward(a.backwardCore(a.Proj.Backward(dy)))
}

// Params lists qkv then proj parameters.
func (a *Attention) Params() []*Param { return append(a.QKV.Params(), a.Proj.Params()...) }

// Buffers is empty.
func (a *Attention) Buffers() []*Buffer { return nil }

// forwardCore maps qkv [B,N,3C] to the merged-head output [B,N,C].
func (a *Attention) forwardCore(qkv *tensor.Tensor) *tensor.Tensor {
	if a.softmaxFn == nil {
		a.softmaxFn, a.softmaxBackFn = a.softmaxTask, a.softmaxBackTask
	}
	b, n, c := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]/3
	h := a.Heads
	d := c / h
	a.qkv, a.b, a.n, a.c, a.d = qkv, b, n, c, d
	a.scale = float32(1 / math.Sqrt(float64(d)))
	att := tensor.Ensure(&a.att, b, h, n, n).Data
	o := tensor.Ensure(&a.o, b, n, c).Data
	q := qkv.Data
	for hh := 0; hh < h; hh++ {
		off := hh * d
		kernels.GemmStrided(false, true, n, n, d, a.scale, q[off:], 3*c, n*3*c, q[c+off:], 3*c, n*3*c,
			0, att[hh*n*n:], n, h*n*n, b)
	}
	kernels.ParallelFor(b*h*n, 16, a.softmaxFn)
	for hh := 0; hh < h; hh++ {
		off := hh * d
		kernels.GemmStrided(false, false, n, d, n, 1, att[hh*n*n:], n, h*n*n, q[2*c+off:], 3*c, n*3*c,
			0, o[off:], c, n*c, b)
	}
	return a.o
}

func (a *Attention) softmaxTask(lo, hi int) {
	n := a.n
	kernels.SoftmaxRows(a.att.Data[lo*n:], a.att.Data[lo*n:], hi-lo, n, n)
}

// backwardCore maps the merged-head output gradient [B,N,C] to dqkv.
func (a *Attention) backwardCore(dout *tensor.Tensor) *tensor.Tensor {
	if a.qkv == nil {
		panic(fmt.Sprintf("nn.Attention(%s): Backward before Forward", a.QKV.Weight.Name))
	}
	if !tensor.SameShape(dout, a.o) {
		panic(fmt.Sprintf("nn.Attention(%s): gradient %v, want %v", a.QKV.Weight.Name, dout.Shape, a.o.Shape))
	}
	b, n, c, d, h := a.b, a.n, a.c, a.d, a.Heads
	dp := tensor.Ensure(&a.dp, n, n).Data
	dq := tensor.Ensure(&a.dqkv, b, n, 3*c).Data
	a.dout = dout
	q := a.qkv.Data
	for bb := 0; bb < b; bb++ {
		for hh := 0; hh < h; hh++ {
			p := a.att.Data[(bb*h+hh)*n*n:]
			qo := bb*n*3*c + hh*d // this head's Q in qkv/dqkv
			do := dout.Data[bb*n*c+hh*d:]
			// dP = dO Vᵀ, dV = Pᵀ dO
			kernels.Gemm(false, true, n, n, d, 1, do, c, q[qo+2*c:], 3*c, 0, dp, n)
			kernels.Gemm(true, false, n, d, n, 1, p, n, do, c, 0, dq[qo+2*c:], 3*c)
			// dScores = scale · P ⊙ (dP - rowdot(P, dP))
			a.cur = p
			kernels.ParallelFor(n, 16, a.softmaxBackFn)
			// dQ = dScores K, dK = dScoresᵀ Q
			kernels.Gemm(false, false, n, d, n, 1, dp, n, q[qo+c:], 3*c, 0, dq[qo:], 3*c)
			kernels.Gemm(true, false, n, d, n, 1, dp, n, q[qo:], 3*c, 0, dq[qo+c:], 3*c)
		}
	}
	return a.dqkv
}

func (a *Attention) softmaxBackTask(lo, hi int) {
	n := a.n
	kernels.SoftmaxRowsBackward(a.dp.Data[lo*n:], a.cur[lo*n:], a.dp.Data[lo*n:], hi-lo, n, n, a.scale)
}
