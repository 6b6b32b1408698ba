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
// 3C) by kernels.Gemm, so heads are never packed. The forward is one
// barrier-free parallel loop over (image, head, block of query rows). The
// scale rides in the QKᵀ GEMM's alpha (forward) and in the softmax
// backward pass (backward). Probabilities are kept for Backward
// ([B,h,N,N]: 118 MB per image at N = 3136; that is what softmax attention
// costs and why SLA exists); the backward needs only one N x N scratch per
// worker, reused across heads.
type Attention struct {
	QKV, Proj *Linear
	Heads     int

	qkv            *tensor.Tensor // QKV's output, not owned
	att, o         *tensor.Tensor // probabilities [B,h,N,N], merged heads [B,N,C]
	dp, dqkv, dout *tensor.Tensor
	b, n, c, d     int
	scale          float32
	groups         int
	cur, curDP     []float32 // the head being differentiated when heads go one at a time

	headFwdFn, headBwdFn, softmaxBackFn func(lo, hi int)
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
	if a.headFwdFn == nil {
		a.headFwdFn, a.headBwdFn = a.headFwdTask, a.headBwdTask
		a.softmaxBackFn = a.softmaxBackTask
	}
	b, n, c := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]/3
	h := a.Heads
	a.qkv, a.b, a.n, a.c, a.d = qkv, b, n, c, c/h
	a.scale = float32(1 / math.Sqrt(float64(a.d)))
	tensor.Ensure(&a.att, b, h, n, n)
	tensor.Ensure(&a.o, b, n, c)
	kernels.ParallelFor(b*h*a.rowBlocks(), 1, a.headFwdFn)
	return a.o
}

// dispatch runs the backward fn over worker groups of (image, head) pairs.
// With enough pairs to keep every thread busy, each of Threads() groups
// takes a contiguous share and runs its GEMMs and softmax serially (a
// nested ParallelFor runs inline), saving the GEMM's per-block barriers;
// otherwise one group runs the pairs in turn and each GEMM and softmax
// parallelises internally. (The backward's dK = dSᵀQ and dV = PᵀdO sum over
// all rows, so it cannot simply split rows as the forward does.) A group index selects the backward's N x N scratch, so
// scratch grows with threads, not with batch x heads.
func (a *Attention) dispatch(fn func(lo, hi int)) {
	nb, t := a.b*a.Heads, kernels.Threads()
	a.groups = 1
	if nb >= 2*t || (nb >= t && nb%t == 0) {
		a.groups = t
	}
	if a.groups == 1 {
		fn(0, 1)
		return
	}
	kernels.ParallelFor(a.groups, 1, fn)
}

// heads returns the (image, head) pairs of group g.
func (a *Attention) heads(g int) (lo, hi int) {
	nb := a.b * a.Heads
	return g * nb / a.groups, (g + 1) * nb / a.groups
}

// attnRows is the number of query rows one forward task handles.
// Attention rows are independent (scores, softmax and P·V of a row need
// only that row), so the forward is one parallel loop over
// (image, head, row block) with no barrier inside; each task's GEMMs run
// serially. 48 rows (four 12-row GEMM panels) leave 15 tasks at N = 196
// with 3 heads, enough to balance two threads, and re-pack K and V once
// per 48 rows, ~1% of the arithmetic.
const attnRows = 48

func (a *Attention) rowBlocks() int { return (a.n + attnRows - 1) / attnRows }

func (a *Attention) headFwdTask(lo, hi int) {
	n, c, d, h := a.n, a.c, a.d, a.Heads
	nb := a.rowBlocks()
	q := a.qkv.Data
	for t := lo; t < hi; t++ {
		bh, i0 := t/nb, (t%nb)*attnRows
		rows := min(attnRows, n-i0)
		b, hh := bh/h, bh%h
		qo := b*n*3*c + hh*d
		p := a.att.Data[bh*n*n+i0*n : bh*n*n+(i0+rows)*n]
		// scores = d^-0.5 Q Kᵀ, softmax, O = P V
		kernels.Gemm(false, true, rows, n, d, a.scale, q[qo+i0*3*c:], 3*c, q[qo+c:], 3*c, 0, p, n)
		kernels.SoftmaxRows(p, p, rows, n, n)
		kernels.Gemm(false, false, rows, d, n, 1, p, n, q[qo+2*c:], 3*c, 0, a.o.Data[(b*n+i0)*c+hh*d:], c)
	}
}

// backwardCore maps the merged-head output gradient [B,N,C] to dqkv.
func (a *Attention) backwardCore(dout *tensor.Tensor) *tensor.Tensor {
	if a.qkv == nil {
		panic(fmt.Sprintf("nn.Attention(%s): Backward before Forward", a.QKV.Weight.Name))
	}
	if !tensor.SameShape(dout, a.o) {
		panic(fmt.Sprintf("nn.Attention(%s): gradient %v, want %v", a.QKV.Weight.Name, dout.Shape, a.o.Shape))
	}
	a.dout = dout
	tensor.Ensure(&a.dqkv, a.b, a.n, 3*a.c)
	nb, t := a.b*a.Heads, kernels.Threads()
	slots := 1
	if nb >= 2*t || (nb >= t && nb%t == 0) {
		slots = t
	}
	tensor.Ensure(&a.dp, slots, a.n, a.n)
	a.dispatch(a.headBwdFn)
	return a.dqkv
}

func (a *Attention) headBwdTask(glo, ghi int) {
	n, c, d, h := a.n, a.c, a.d, a.Heads
	q, dq := a.qkv.Data, a.dqkv.Data
	for g := glo; g < ghi; g++ {
		dp := a.dp.Data[g*n*n : (g+1)*n*n]
		lo, hi := a.heads(g)
		for t := lo; t < hi; t++ {
			b, hh := t/h, t%h
			qo := b*n*3*c + hh*d
			p := a.att.Data[t*n*n : (t+1)*n*n]
			do := a.dout.Data[b*n*c+hh*d:]
			// dV = Pᵀ dO, dP = dO Vᵀ
			kernels.Gemm(true, false, n, d, n, 1, p, n, do, c, 0, dq[qo+2*c:], 3*c)
			kernels.Gemm(false, true, n, n, d, 1, do, c, q[qo+2*c:], 3*c, 0, dp, n)
			// dScores = d^-0.5 · P ⊙ (dP - rowdot(P, dP)), in place over dP
			if a.groups == 1 {
				a.cur, a.curDP = p, dp
				kernels.ParallelFor(n, 16, a.softmaxBackFn)
			} else {
				kernels.SoftmaxRowsBackward(dp, p, dp, n, n, n, a.scale)
			}
			// dQ = dScores K, dK = dScoresᵀ Q
			kernels.Gemm(false, false, n, d, n, 1, dp, n, q[qo+c:], 3*c, 0, dq[qo:], 3*c)
			kernels.Gemm(true, false, n, d, n, 1, dp, n, q[qo:], 3*c, 0, dq[qo+c:], 3*c)
		}
	}
}

func (a *Attention) softmaxBackTask(lo, hi int) {
	n := a.n
	kernels.SoftmaxRowsBackward(a.curDP[lo*n:], a.cur[lo*n:], a.curDP[lo*n:], hi-lo, n, n, a.scale)
}
