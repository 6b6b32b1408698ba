package nn

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Attention is standard ViT multi-head softmax attention (docs/method.md 3.3,
// DeiT-PRepBN): [Q|K|V] = qkv(x), per head softmax(Q Kᵀ · d^-0.5) V, heads
// merged, proj. No mask, no dropout.
//
// Design: Q, K, V are read in place from the qkv activation (row stride
// 3C), so heads are never packed: at head widths of 32-64 and a few
// hundred tokens the products are too small for a packing GEMM to pay off
// (at 49 tokens the GEMM path ran at a fifth of the head kernel's rate).
// The forward runs them through kernels.GemmSerial (the GEMM's 12x32 tile,
// operands in place; the same bits as kernels.HeadMatMul, ~10 % faster on
// Q·Kᵀ over 197 keys), the backward through HeadMatMul, whose strided A
// reads the transposed operands. The two products whose right operand is
// a transposed head (QKᵀ, dO·Vᵀ) read a d x N copy: Kᵀ once per (image,
// head), written by the first forward task of the pair, with the d^-0.5
// scale folded in, and Vᵀ per backward worker. The forward is one
// parallel loop over (image, head, block of query rows); the backward folds the scale into the softmax backward
// pass. Probabilities are kept for Backward ([B,h,N,N]: 118 MB per image at
// N = 3136; that is what softmax attention costs and why SLA exists); the
// backward needs one N x N and one d x N scratch per worker, reused across
// heads.
type Attention struct {
	QKV, Proj *Linear
	Heads     int

	qkv            *tensor.Tensor // QKV's output, not owned
	att, o         *tensor.Tensor // probabilities [B,h,N,N], merged heads [B,N,C]
	kT             *tensor.Tensor // d^-0.5 Kᵀ per (image, head) [B,h,d,N]
	vT             *tensor.Tensor // per-worker Vᵀ scratch [groups,d,N]
	dp, dqkv, dout *tensor.Tensor
	b, n, c, d     int
	rowsPer        int  // query rows per forward task
	kInTask        bool // forward tasks are whole sequences and transpose their own K
	scale          float32
	groups         int
	cur, curDP     []float32 // the head being differentiated when heads go one at a time
	curT, stage    int

	// Optional additions to the scaled logits before the softmax, set by
	// WindowAttention: bias [h,N,N] for every image (Swin's relative
	// position bias) and mask [nW,N,N], image b using mask[b mod nW] (the
	// shifted-window mask). With bias set, Backward leaves the logit
	// gradient (times d^-0.5) in att, which the bias gradient needs.
	bias, mask *tensor.Tensor

	kReady []atomic.Int32 // per pair: Kᵀ unwritten (0), being written (1), written (2)

	noProbs bool // the last forward kept no probabilities (evaluation)

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

// ForwardAdd is res + Forward(x), the residual added in proj's epilogue
// (the block's residual connection without a pass of its own over
// memory); the bits are Forward's followed by the sum.
func (a *Attention) ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 || x.Shape[2] != a.QKV.In {
		panic(fmt.Sprintf("nn.Attention(%s): input %v, want [B,N,%d]", a.QKV.Weight.Name, x.Shape, a.QKV.In))
	}
	return a.Proj.ForwardAdd(a.forwardCore(a.QKV.Forward(x)), res)
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
	// Evaluation (weights prepacked) keeps no probabilities: each task
	// forms its rows in a scratch shared by every layer, which stays in
	// the core's cache, instead of writing [B,h,N,N] (30 MB per layer for
	// DeiT-Small at batch 32) out to memory for a Backward that never
	// comes.
	a.noProbs = a.QKV.Packed()
	if !a.noProbs {
		tensor.Ensure(&a.att, b, h, n, n)
	}
	tensor.Ensure(&a.o, b, n, c)
	tensor.Ensure(&a.kT, b, h, a.d, a.ldk())
	a.rowsPer, a.kInTask = attnRows, b*h >= 16
	if a.kInTask {
		// Pairs enough to balance the threads: whole sequences per task,
		// each transposing its own K (no separate pass, no short blocks).
		a.rowsPer = n
		kernels.ParallelFor(b*h, 1, a.headFwdFn)
		return a.o
	}
	// One region: the first task of a pair to start writes its Kᵀ, the
	// pair's other tasks wait for it (ensureKT). A region of its own for
	// the transposes cost a fork/join and, with 3 heads on 2 threads, an
	// uneven 2/1 split per block.
	if cap(a.kReady) < b*h {
		a.kReady = make([]atomic.Int32, b*h)
	}
	a.kReady = a.kReady[:b*h]
	for i := range a.kReady {
		a.kReady[i].Store(0)
	}
	kernels.ParallelFor(b*h*a.rowBlocks(), 1, a.headFwdFn)
	return a.o
}

// ensureKT returns once d^-0.5 Kᵀ of pair bh is written: the first task
// to get here writes it (kReady 0 -> 1 -> 2), later ones wait for 2. The
// writer waits on nothing, so this cannot deadlock, and a task run inline
// (one thread, or a nested call) writes the transpose itself.
func (a *Attention) ensureKT(bh int) {
	r := &a.kReady[bh]
	if r.Load() == 2 {
		return
	}
	if r.CompareAndSwap(0, 1) {
		a.kTTask(bh, bh+1)
		r.Store(2)
		return
	}
	for r.Load() != 2 {
		runtime.Gosched()
	}
}

// kTTask writes d^-0.5 Kᵀ of (image, head) pairs [lo, hi).
func (a *Attention) kTTask(lo, hi int) {
	n, c, d, h, ld := a.n, a.c, a.d, a.Heads, a.ldk()
	for t := lo; t < hi; t++ {
		b, hh := t/h, t%h
		kernels.TransposeScale(a.kT.Data[t*d*ld:(t+1)*d*ld], ld, a.qkv.Data[b*n*3*c+c+hh*d:], 3*c, n, d, a.scale)
	}
}

// ldk is the row stride of Kᵀ: N rounded up to 16 floats, so that every
// row starts on a 64-byte line and the Q·Kᵀ kernel's vector loads of B
// never straddle two lines (at N = 197 they all did: 0.68 ms of DeiT-Small's
// ~30 ms at batch 1).
func (a *Attention) ldk() int { return (a.n + 15) &^ 15 }

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

// probScratch holds evaluation attention's per-task probability rows,
// shared by every layer (a task reuses rows still in its core's cache).
var probScratch kernels.FreeList[[]float32]

// attnRows is the number of query rows one forward task handles.
// Attention rows are independent (scores, softmax and P·V of a row need
// only that row), so the forward is one parallel loop over
// (image, head, row block) with no barrier inside; each task's GEMMs run
// serially. 48 rows (four 12-row GEMM panels) leave 12 tasks at N = 197
// with 3 heads, enough to balance two threads.
const attnRows = 48

// rowBlocks is the number of row blocks per sequence: whole blocks of
// rowsPer rows, the last one also taking the remainder. A short block of
// its own (5 rows at N = 197) would be a task with a twelfth of the work
// of the others, and ParallelFor's equal shares of tasks would then be
// unequal shares of work: at batch 1 with 3 heads, 15 tasks split 8/7
// gave one thread 7.1 blocks' work and the other 5.2; 12 tasks of 48 or
// 53 rows split 6/6 are even.
func (a *Attention) rowBlocks() int { return max(1, a.n/a.rowsPer) }

// rowBlock returns the first row and the row count of block blk.
func (a *Attention) rowBlock(blk int) (i0, rows int) {
	i0 = blk * a.rowsPer
	if blk == a.rowBlocks()-1 {
		return i0, a.n - i0
	}
	return i0, a.rowsPer
}

func (a *Attention) headFwdTask(lo, hi int) {
	n, c, d, h := a.n, a.c, a.d, a.Heads
	nb := a.rowBlocks()
	q := a.qkv.Data
	var scratch *[]float32
	if a.noProbs {
		scratch = probScratch.Get()
		defer probScratch.Put(scratch)
	}
	for t := lo; t < hi; t++ {
		bh := t / nb
		i0, rows := a.rowBlock(t % nb)
		b, hh := bh/h, bh%h
		qo := b*n*3*c + hh*d
		if a.kInTask {
			a.kTTask(bh, bh+1)
		} else {
			a.ensureKT(bh)
		}
		var p []float32
		if scratch != nil {
			if cap(*scratch) < rows*n {
				*scratch = make([]float32, rows*n)
			}
			p = (*scratch)[:rows*n]
		} else {
			p = a.att.Data[bh*n*n+i0*n : bh*n*n+(i0+rows)*n]
		}
		// scores = Q (d^-0.5 Kᵀ), softmax, O = P V
		ld := a.ldk()
		kernels.GemmSerial(rows, n, d, q[qo+i0*3*c:], 3*c, a.kT.Data[bh*d*ld:], ld, p, n)
		if a.bias != nil {
			a.addBias(p, b, hh, i0, rows)
		}
		kernels.SoftmaxRows(p, p, rows, n, n)
		kernels.GemmSerial(rows, d, n, p, n, q[qo+2*c:], 3*c, a.o.Data[(b*n+i0)*c+hh*d:], c)
	}
}

// addBias adds rows [i0, i0+rows) of head hh's bias, and of image b's
// mask when there is one, to those rows' logits p.
func (a *Attention) addBias(p []float32, b, hh, i0, rows int) {
	n := a.n
	p = p[:rows*n]
	// Serial vector adds (under 2·attnRows·N or N² values, below
	// kernels.Add's parallel threshold at window sizes).
	kernels.Add(p, p, a.bias.Data[(hh*n+i0)*n:(hh*n+i0+rows)*n])
	if a.mask != nil {
		m := (b % a.mask.Shape[0]) * n * n
		kernels.Add(p, p, a.mask.Data[m+i0*n:m+(i0+rows)*n])
	}
}

// backwardCore maps the merged-head output gradient [B,N,C] to dqkv.
func (a *Attention) backwardCore(dout *tensor.Tensor) *tensor.Tensor {
	if a.qkv == nil {
		panic(fmt.Sprintf("nn.Attention(%s): Backward before Forward", a.QKV.Weight.Name))
	}
	if a.noProbs {
		panic(fmt.Sprintf("nn.Attention(%s): Backward after an evaluation forward (weights prepacked: no probabilities kept)", a.QKV.Weight.Name))
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
	tensor.Ensure(&a.vT, slots, a.d, a.n)
	a.dispatch(a.headBwdFn)
	return a.dqkv
}

func (a *Attention) headBwdTask(glo, ghi int) {
	n, c, d, h := a.n, a.c, a.d, a.Heads
	q := a.qkv.Data
	for g := glo; g < ghi; g++ {
		dp := a.dp.Data[g*n*n : (g+1)*n*n]
		vT := a.vT.Data[g*d*n : (g+1)*d*n]
		lo, hi := a.heads(g)
		for t := lo; t < hi; t++ {
			b, hh := t/h, t%h
			a.cur, a.curDP, a.curT = a.att.Data[t*n*n:(t+1)*n*n], dp, t
			kernels.TransposeScale(vT, n, q[b*n*3*c+2*c+hh*d:], 3*c, n, d, 1)
			if a.groups == 1 {
				// One pair at a time (few images and heads): each stage's
				// rows split across the pool.
				for a.stage = 0; a.stage < 2; a.stage++ {
					kernels.ParallelFor(n, 16, a.softmaxBackFn)
				}
				continue
			}
			a.bwdRows(t, dp, vT, 0, 0, n)
			a.bwdRows(t, dp, vT, 1, 0, n)
		}
	}
}

// softmaxBackTask runs backward stage a.stage of the current (image, head)
// for rows [lo, hi) (the single-group schedule's parallel body).
func (a *Attention) softmaxBackTask(lo, hi int) {
	g := 0
	a.bwdRows(a.curT, a.curDP, a.vT.Data[g*a.d*a.n:(g+1)*a.d*a.n], a.stage, lo, hi)
}

// bwdRows computes rows [lo, hi) of one backward stage for (image, head)
// pair t with scratch dp (N x N) and vT (Vᵀ). Stage 0: dV = Pᵀ dO (rows of
// dV are keys), dP = dO Vᵀ and dScores = d^-0.5 P ⊙ (dP - rowdot(P, dP)) in
// place (rows are queries). Stage 1, after all of dScores exists: dQ =
// dScores K (query rows) and dK = dScoresᵀ Q (key rows).
func (a *Attention) bwdRows(t int, dp, vT []float32, stage, lo, hi int) {
	n, c, d, h := a.n, a.c, a.d, a.Heads
	b, hh := t/h, t%h
	q, dq := a.qkv.Data, a.dqkv.Data
	qo := b*n*3*c + hh*d
	p := a.att.Data[t*n*n : (t+1)*n*n]
	do := a.dout.Data[b*n*c+hh*d:]
	m := hi - lo
	if stage == 0 {
		kernels.HeadMatMul(m, d, n, p[lo:], 1, n, do, c, dq[qo+lo*3*c+2*c:], 3*c, false)
		kernels.HeadMatMul(m, n, d, do[lo*c:], c, 1, vT, n, dp[lo*n:], n, false)
		kernels.SoftmaxRowsBackward(dp[lo*n:], p[lo*n:], dp[lo*n:], m, n, n, a.scale)
		return
	}
	kernels.HeadMatMul(m, d, n, dp[lo*n:], n, 1, q[qo+c:], 3*c, dq[qo+lo*3*c:], 3*c, false)
	kernels.HeadMatMul(m, d, n, dp[lo:], 1, n, q[qo:], 3*c, dq[qo+lo*3*c+c:], 3*c, false)
	if a.bias != nil {
		// Keep the logit gradient for the bias gradient, over P: stage 1
		// no longer reads P, while stage 0 of other rows did (dV = Pᵀ dO
		// reads P by columns), so before this point P was still needed.
		copy(p[lo*n:hi*n], dp[lo*n:hi*n])
	}
}
