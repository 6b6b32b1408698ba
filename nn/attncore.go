package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// AttnCore is multi-head softmax attention between two token sets: queries
// from one (Nq tokens), keys and values from another (Nk tokens), per head
// softmax(Q Kᵀ · scale) V. PVT's spatial-reduction attention takes K and V
// from a reduced token set (docs/method.md 3.3); CSwin's stripes and any
// window attention are the Nq = Nk case over gathered windows. It owns no
// parameters: the layer around it supplies Q, K and V where they lie (row
// strides and batch strides into its Linear outputs or window buffers) and
// takes dQ, dK, dV back in the same layout.
//
// Design: nn.Attention's kernels, with the query and key/value sets apart.
// Kᵀ is copied per (sequence, head) pair with the scale folded in; the
// forward is one parallel loop over (pair, block of query rows), rows
// being independent. The backward is two parallel loops: by query rows
// (dP = dO Vᵀ, dS = softmax backward, dQ = dS K), then, once a pair's dS
// is complete, by key rows (dV = Pᵀ dO, dK = dSᵀ Q). Every output element is
// one HeadMatMul dot product in a fixed order, so results do not depend on
// how the loops are split across threads. Probabilities P and dS are kept,
// [pairs, Nq, Nk] each: with keys reduced (Nk = N/64 in PVT stage 1) that
// is small; with Nq = Nk it is the square every softmax attention pays.
type AttnCore struct {
	Heads int
	// Scale multiplies the logits; 0 means d^-0.5 (d = head width).
	Scale float32

	q, k, v          []float32 // operands of the last Forward, not owned
	ldq, ldk, ldv    int
	sq, sk, sv       int
	nb, nq, nk, c, d int
	scale            float32
	att, o, kT, vT   *tensor.Tensor
	dp, dout         *tensor.Tensor
	dq, dk, dv       []float32
	shp              []int

	kTFn, fwdFn, vTFn, bwdQFn, bwdKFn func(lo, hi int)
}

// coreRows is the number of query (or key) rows one task handles, as
// attnRows in nn.Attention: a few GEMM panels, enough tasks to balance.
const coreRows = 48

// Forward computes the merged-head output [nb, nq, c] (layer-owned) of nb
// independent sequences. Sequence i's query token j, head h, is
// q[i*sq + j*ldq + h*d : +d] (d = c/Heads); keys and values likewise with
// nk tokens, row strides ldk, ldv and batch strides sk, sv. The slices are
// kept for Backward and must not change before it.
func (a *AttnCore) Forward(nb, nq, nk, c int, q []float32, ldq, sq int, k []float32, ldk, sk int, v []float32, ldv, sv int) *tensor.Tensor {
	if a.Heads < 1 || c%a.Heads != 0 || nb < 1 || nq < 1 || nk < 1 {
		panic(fmt.Sprintf("nn.AttnCore: %d heads, %d sequences of %d queries and %d keys, width %d", a.Heads, nb, nq, nk, c))
	}
	need := func(name string, s []float32, ld, stride, n int) {
		if ld < c || len(s) < (nb-1)*stride+(n-1)*ld+c {
			panic(fmt.Sprintf("nn.AttnCore: %s has %d values, needs %d (%d sequences of %d rows, stride %d, row stride %d, width %d)",
				name, len(s), (nb-1)*stride+(n-1)*ld+c, nb, n, stride, ld, c))
		}
	}
	need("Q", q, ldq, sq, nq)
	need("K", k, ldk, sk, nk)
	need("V", v, ldv, sv, nk)
	if a.fwdFn == nil {
		a.kTFn, a.fwdFn, a.vTFn = a.kTTask, a.fwdTask, a.vTTask
		a.bwdQFn, a.bwdKFn = a.bwdQTask, a.bwdKTask
	}
	a.q, a.k, a.v = q, k, v
	a.ldq, a.ldk, a.ldv, a.sq, a.sk, a.sv = ldq, ldk, ldv, sq, sk, sv
	a.nb, a.nq, a.nk, a.c, a.d = nb, nq, nk, c, c/a.Heads
	a.scale = a.Scale
	if a.scale == 0 {
		a.scale = float32(1 / math.Sqrt(float64(a.d)))
	}
	pairs := nb * a.Heads
	ensureDims(&a.att, &a.shp, pairs, nq, nk)
	ensureDims(&a.kT, &a.shp, pairs, a.d, nk)
	ensureDims(&a.o, &a.shp, nb, nq, c)
	kernels.ParallelFor(pairs, 1, a.kTFn)
	kernels.ParallelFor(pairs*blocks(nq), 1, a.fwdFn)
	return a.o
}

func blocks(n int) int { return (n + coreRows - 1) / coreRows }

// kTTask writes scale·Kᵀ [d, nk] of pairs [lo, hi).
func (a *AttnCore) kTTask(lo, hi int) {
	d, nk := a.d, a.nk
	for t := lo; t < hi; t++ {
		b, h := t/a.Heads, t%a.Heads
		kernels.TransposeScale(a.kT.Data[t*d*nk:(t+1)*d*nk], nk, a.k[b*a.sk+h*d:], a.ldk, nk, d, a.scale)
	}
}

// vTTask writes Vᵀ [d, nk] of pairs [lo, hi) (for dP = dO Vᵀ).
func (a *AttnCore) vTTask(lo, hi int) {
	d, nk := a.d, a.nk
	for t := lo; t < hi; t++ {
		b, h := t/a.Heads, t%a.Heads
		kernels.TransposeScale(a.vT.Data[t*d*nk:(t+1)*d*nk], nk, a.v[b*a.sv+h*d:], a.ldv, nk, d, 1)
	}
}

func (a *AttnCore) fwdTask(lo, hi int) {
	d, nq, nk, c := a.d, a.nq, a.nk, a.c
	nbk := blocks(nq)
	for t := lo; t < hi; t++ {
		pair, i0 := t/nbk, (t%nbk)*coreRows
		rows := min(coreRows, nq-i0)
		b, h := pair/a.Heads, pair%a.Heads
		p := a.att.Data[(pair*nq+i0)*nk : (pair*nq+i0+rows)*nk]
		// GemmSerial: HeadMatMul's bits through the GEMM's wider tile.
		kernels.GemmSerial(rows, nk, d, a.q[b*a.sq+i0*a.ldq+h*d:], a.ldq, a.kT.Data[pair*d*nk:], nk, p, nk)
		kernels.SoftmaxRows(p, p, rows, nk, nk)
		kernels.GemmSerial(rows, d, nk, p, nk, a.v[b*a.sv+h*d:], a.ldv, a.o.Data[(b*nq+i0)*c+h*d:], c)
	}
}

// Backward takes the output gradient dout [nb, nq, c] and writes
// (overwrites) dQ, dK and dV into dq, dk, dv, laid out as Forward's q, k
// and v (same row and batch strides; values between heads' columns are
// left alone). dk and dv may be two views of one buffer (a kv Linear's
// gradient) but must not overlap dq's written columns.
func (a *AttnCore) Backward(dout *tensor.Tensor, dq, dk, dv []float32) {
	if a.q == nil {
		panic("nn.AttnCore: Backward before Forward")
	}
	if !tensor.SameShape(dout, a.o) {
		panic(fmt.Sprintf("nn.AttnCore: gradient %v, want %v", dout.Shape, a.o.Shape))
	}
	if len(dq) < (a.nb-1)*a.sq+(a.nq-1)*a.ldq+a.c ||
		len(dk) < (a.nb-1)*a.sk+(a.nk-1)*a.ldk+a.c || len(dv) < (a.nb-1)*a.sv+(a.nk-1)*a.ldv+a.c {
		panic(fmt.Sprintf("nn.AttnCore: gradient buffers of %d, %d, %d values are shorter than Q, K, V", len(dq), len(dk), len(dv)))
	}
	a.dout, a.dq, a.dk, a.dv = dout, dq, dk, dv
	pairs := a.nb * a.Heads
	ensureDims(&a.dp, &a.shp, pairs, a.nq, a.nk)
	ensureDims(&a.vT, &a.shp, pairs, a.d, a.nk)
	kernels.ParallelFor(pairs, 1, a.vTFn)
	kernels.ParallelFor(pairs*blocks(a.nq), 1, a.bwdQFn)
	kernels.ParallelFor(pairs*blocks(a.nk), 1, a.bwdKFn)
}

// bwdQTask: for query rows, dP = dO Vᵀ, dS = scale·P ⊙ (dP - rowdot(P, dP))
// in place, dQ = dS K.
func (a *AttnCore) bwdQTask(lo, hi int) {
	d, nq, nk, c := a.d, a.nq, a.nk, a.c
	nbk := blocks(nq)
	for t := lo; t < hi; t++ {
		pair, i0 := t/nbk, (t%nbk)*coreRows
		rows := min(coreRows, nq-i0)
		b, h := pair/a.Heads, pair%a.Heads
		off := (pair*nq + i0) * nk
		p := a.att.Data[off : off+rows*nk]
		dp := a.dp.Data[off : off+rows*nk]
		kernels.HeadMatMul(rows, nk, d, a.dout.Data[(b*nq+i0)*c+h*d:], c, 1, a.vT.Data[pair*d*nk:], nk, dp, nk, false)
		kernels.SoftmaxRowsBackward(dp, p, dp, rows, nk, nk, a.scale)
		kernels.HeadMatMul(rows, d, nk, dp, nk, 1, a.k[b*a.sk+h*d:], a.ldk, a.dq[b*a.sq+i0*a.ldq+h*d:], a.ldq, false)
	}
}

// bwdKTask: for key rows, dV = Pᵀ dO and dK = dSᵀ Q (sums over all queries).
func (a *AttnCore) bwdKTask(lo, hi int) {
	d, nq, nk, c := a.d, a.nq, a.nk, a.c
	nbk := blocks(nk)
	for t := lo; t < hi; t++ {
		pair, j0 := t/nbk, (t%nbk)*coreRows
		rows := min(coreRows, nk-j0)
		b, h := pair/a.Heads, pair%a.Heads
		off := pair*nq*nk + j0
		kernels.HeadMatMul(rows, d, nq, a.att.Data[off:], 1, nk, a.dout.Data[b*nq*c+h*d:], c, a.dv[b*a.sv+j0*a.ldv+h*d:], a.ldv, false)
		kernels.HeadMatMul(rows, d, nq, a.dp.Data[off:], 1, nk, a.q[b*a.sq+h*d:], a.ldq, a.dk[b*a.sk+j0*a.ldk+h*d:], a.ldk, false)
	}
}
