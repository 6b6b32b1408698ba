package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// SLA is SLAB's simplified linear attention (docs/method.md 3.1):
//
//	SLA(x) = proj( concat_h [ ReLU(Q_h)·(ReLU(K_h+P_h)ᵀV_h) / (ReLU(Q_h)·Σ_j ReLU(K_h+P_h)_j + 1e-6) + DWC(V_h) ] )
//
// with [Q|K|V] = qkv(x), P the learned positional encoding [1,N,C] added to
// K only, and DWC one depthwise k x k conv over each head's V seen as a
// d x H x W map (token index = row*W + col), its d filters shared by all
// heads.
//
// Design: a fused kernel pipeline between the two Linears, reading Q, K, V
// where they lie in the qkv activation (row stride 3C), never packing or
// transposing a head and never forming an N x N matrix (cost and memory
// linear in N). Forward is three passes:
//
//  1. per block of map rows: Qr = ReLU(Q), Kr = ReLU(K+P), the block's
//     partial of Σ_j Kr_j;
//  2. per (image, head, block of 16 rows of S): S = KrᵀV, ksum;
//  3. per block of map rows: num = Qr·S, z = 1/(Qr·ksum + 1e-6), O = z·num,
//     plus the depthwise conv and bias of V, written into the merged-head
//     output.
//
// The d x d products use kernels.HeadMatMul (no packing: for a head width of
// 64 a packing GEMM spends most of its time packing). Backward is four
// passes of the same shape (G = z·dO and the denominator gradient; dS and
// dksum; Sᵀ and dSᵀ; then per block of map rows dQ, dK, dV, the DWC input
// gradient and per-worker DWC weight/bias partials). A block is as many
// whole map rows as make about 48 tokens (the head products then run on
// full 8-row tiles), or single rows when few images and heads would leave
// a thread idle (batch 1). Worker functions are bound once, so a
// steady-state pass allocates nothing.
type SLA struct {
	QKV, Proj                  *Linear
	PosEnc, DWCWeight, DWCBias *Param
	Heads, H, W, Kernel        int

	// Forward state kept for Backward (valid until the next Forward).
	qkv            *tensor.Tensor // QKV's output [B,N,3C], not owned
	qr, kr, num, o *tensor.Tensor // [B,N,C]: ReLU(Q), ReLU(K+P), Q·S, output
	ksum, s, z, wt *tensor.Tensor // [B,h,d], [B,h,d,d], [B,h,N], tap-major DWC weight
	ksumPart       *tensor.Tensor // per row block Σ_j ReLU(K+P)_j [B*h*blocks, d]
	// Backward scratch.
	g, dqkv, dden, dS, dks *tensor.Tensor
	sT, dsT, part, dout    *tensor.Tensor
	b, n, c, d, groups     int
	rpt, nblk              int // map rows per task, row blocks per map

	prepFn, sFn, outFn, gradFn, dsFn, transFn, inGradFn, posGradFn func(lo, hi int)
	fwdMapFn, bwdMapFn                                             func(lo, hi int)
	reluFn                                                         func(c []float32, ldc, i0, i1, j0, j1 int)

	// Evaluation (inferCore): the qkv activation with Qr and Kr in place,
	// and the input to rerun the training forward on if Backward follows.
	iqkv, fusedX *tensor.Tensor
	inplace      bool
}

// NewSLA builds name.qkv (dim -> 3*dim, [q|k|v]), name.proj (dim -> dim,
// with bias), name.positional_encoding [1,h*w,dim] (zeros, weight-decayed
// as in the official code, docs/method.md 9, item 15), name.dwc.weight [d,1,k,k]
// and name.dwc.bias [d], d = dim/heads. Parameters start at zero; the model
// initialises them.
func NewSLA(name string, dim, heads, h, w, kernel int, qkvBias bool) *SLA {
	if heads <= 0 || dim%heads != 0 {
		panic(fmt.Sprintf("nn.NewSLA(%s): dim %d not divisible by %d heads", name, dim, heads))
	}
	if kernel%2 != 1 {
		panic(fmt.Sprintf("nn.NewSLA(%s): depthwise kernel %d must be odd", name, kernel))
	}
	d := dim / heads
	return &SLA{
		QKV:       NewLinear(name+".qkv", dim, 3*dim, qkvBias),
		Proj:      NewLinear(name+".proj", dim, dim, true),
		PosEnc:    NewParam(name+".positional_encoding", false, 1, h*w, dim),
		DWCWeight: NewParam(name+".dwc.weight", false, d, 1, kernel, kernel),
		DWCBias:   NewParam(name+".dwc.bias", true, d),
		Heads:     heads, H: h, W: w, Kernel: kernel,
	}
}

// Forward maps [B,N,C] tokens (N = H*W) to [B,N,C].
func (s *SLA) Forward(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 || x.Shape[1] != s.H*s.W || x.Shape[2] != s.QKV.In {
		panic(fmt.Sprintf("nn.SLA(%s): input %v, want [B,%d,%d]", s.PosEnc.Name, x.Shape, s.H*s.W, s.QKV.In))
	}
	if s.QKV.Packed() && s.QKV.quant() == nil {
		s.fusedX = x
		return s.Proj.Forward(s.inferCore(x))
	}
	s.fusedX = nil
	return s.Proj.Forward(s.forwardCore(s.QKV.Forward(x)))
}

// ForwardAdd is res + Forward(x), the residual added in proj's epilogue
// (the block's residual connection without a pass of its own).
func (s *SLA) ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor {
	if s.QKV.Packed() && s.QKV.quant() == nil {
		if len(x.Shape) != 3 || x.Shape[1] != s.H*s.W || x.Shape[2] != s.QKV.In {
			panic(fmt.Sprintf("nn.SLA(%s): input %v, want [B,%d,%d]", s.PosEnc.Name, x.Shape, s.H*s.W, s.QKV.In))
		}
		s.fusedX = x
		return s.Proj.ForwardAdd(s.inferCore(x), res)
	}
	y := s.Forward(x)
	kernels.Add(y.Data, res.Data, y.Data)
	return y
}

// inferCore is forwardCore for evaluation (the qkv weight prepacked,
// nn.Prepack): the ReLUs and the positional encoding are applied in place
// to the qkv activation by the GEMM's epilogue while each tile is in cache
// (kernels.Epilogue.Tile), so pass 1 and the Qr, Kr copies disappear; the
// S pass sums ksum from the in-place Kr (kernels.ColSumsStrided, a fixed
// order) and the output pass reads Qr there. At 3,136 tokens the prep pass
// was ~13 % of the module's time. Results agree with forwardCore to
// rounding (ksum is summed in another order).
func (s *SLA) inferCore(x *tensor.Tensor) *tensor.Tensor {
	b, n := x.Shape[0], x.Shape[1]
	c := s.QKV.In
	qkv := tensor.Ensure(&s.iqkv, b, n, 3*c)
	s.prepare(qkv)
	s.inplace = true
	s.QKV.gemm(b*n, x.Data, qkv.Data, kernels.Epilogue{Bias: biasData(s.QKV), Tile: s.reluFn})
	s.runForward()
	return s.o
}

// reluTile is the qkv GEMM's epilogue in inferCore: ReLU on the Q
// columns, ReLU(K + P) on the K columns of rows [i0, i1) (token = row mod
// N, split at image boundaries), V untouched. Elementwise, so the GEMM may
// cut C as it likes.
func (s *SLA) reluTile(cc []float32, ldc, i0, i1, j0, j1 int) {
	c, n := s.c, s.n
	if q1 := min(j1, c); j0 < q1 {
		kernels.SLAReLU(cc[i0*ldc+j0:], ldc, nil, 0, i1-i0, q1-j0)
	}
	k0, k1 := max(j0, c), min(j1, 2*c)
	if k0 >= k1 {
		return
	}
	pos := s.PosEnc.W.Data
	for r := i0; r < i1; {
		t := r % n
		e := min(i1, r+n-t)
		kernels.SLAReLU(cc[r*ldc+k0:], ldc, pos[t*c+k0-c:], c, e-r, k1-k0)
		r = e
	}
}

// Backward returns dx and accumulates the gradients of all parameters.
// After an evaluation Forward (inferCore, which keeps no Qr, Kr) it first
// reruns the training forward on the same input.
func (s *SLA) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if x := s.fusedX; x != nil {
		s.fusedX = nil
		s.Proj.Forward(s.forwardCore(s.QKV.Forward(x)))
	}
	return s.QKV.Backward(s.backwardCore(s.Proj.Backward(dy)))
}

// Params lists qkv, proj, positional_encoding, dwc.weight, dwc.bias.
func (s *SLA) Params() []*Param {
	ps := append(s.QKV.Params(), s.Proj.Params()...)
	return append(ps, s.PosEnc, s.DWCWeight, s.DWCBias)
}

// Buffers is empty.
func (s *SLA) Buffers() []*Buffer { return nil }

func (s *SLA) bind() {
	if s.prepFn != nil {
		return
	}
	s.prepFn, s.sFn, s.outFn, s.reluFn = s.prepTask, s.sTask, s.outTask, s.reluTile
	s.gradFn, s.dsFn, s.transFn, s.inGradFn, s.posGradFn = s.gradTask, s.dsTask, s.transTask, s.inGradTask, s.posGradTask
	s.fwdMapFn, s.bwdMapFn = s.fwdMapTask, s.bwdMapTask
}

// slaGroups is the number of contiguous groups the backward deals its
// rows tasks in, each summing its DWC weight and bias gradients into its
// own partial: at least eight (threads to balance on any ordinary machine)
// and, for many tasks, a quarter of them, so that parallelism grows with
// the work while the partials (26·d floats each for a 5x5 kernel) cost
// little against the four tasks each one stands for. It depends on the
// task count only, never on kernels.Threads(): the summation order of the
// gradients, and so their bits, are the same on any number of threads.
func slaGroups(tasks int) int { return min(tasks, max(8, tasks/4)) }

// sBlock is the number of rows of S (or dS) one task computes: a multiple
// of HeadMatMul's 4-row block that splits d = 64 four ways.
const sBlock = 16

// smallMap is the token count up to which a map is never split into row
// tasks: a 7x7 map (28x28 images, patch 4) holds ~50 us of work per layer in
// all, and three parallel regions of one-row tasks cost more in fork/join
// and lost locality than the threads gain; one task per (image, head) runs
// the three passes while the map is in L1.
const smallMap = 64

// forwardCore runs the attention between qkv [B,N,3C] and the merged-head
// output [B,N,C] that proj consumes.
func (s *SLA) forwardCore(qkv *tensor.Tensor) *tensor.Tensor {
	s.prepare(qkv)
	s.inplace = false
	s.runForward()
	return s.o
}

// prepare sets the shapes and buffers of a forward on qkv [B,N,3C].
func (s *SLA) prepare(qkv *tensor.Tensor) {
	s.bind()
	b, n, c3 := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	c, h := c3/3, s.Heads
	d := c / h
	if n != s.H*s.W || c != s.PosEnc.W.Shape[2] {
		panic(fmt.Sprintf("nn.SLA(%s): qkv %v does not match H*W=%d, dim %d", s.PosEnc.Name, qkv.Shape, s.H*s.W, s.PosEnc.W.Shape[2]))
	}
	s.qkv, s.b, s.n, s.c, s.d = qkv, b, n, c, d
	tensor.Ensure(&s.qr, b, n, c)
	tensor.Ensure(&s.kr, b, n, c)
	tensor.Ensure(&s.num, b, n, c)
	tensor.Ensure(&s.o, b, n, c)
	tensor.Ensure(&s.ksum, b, h, d)
	s.rpt = min(s.H, (48+s.W-1)/s.W)
	if b*h*((s.H+s.rpt-1)/s.rpt) < 16 && n > smallMap {
		s.rpt = 1 // few images and heads: row tasks keep every thread busy
	}
	s.nblk = (s.H + s.rpt - 1) / s.rpt
	tensor.Ensure(&s.ksumPart, b*h*s.nblk, d)
	tensor.Ensure(&s.s, b, h, d, d)
	tensor.Ensure(&s.z, b, h, n)
	k := s.Kernel
	kernels.DWWeightTapMajor(tensor.Ensure(&s.wt, k*k, d).Data, s.DWCWeight.W.Data, d, k)
}

// runForward runs the passes (pass 1 only unless inplace).
func (s *SLA) runForward() {
	b, h := s.b, s.Heads
	if s.nblk == 1 {
		// Whole maps per task: each (image, head) runs its three passes
		// back to back while its rows are in cache, in one parallel region.
		kernels.ParallelFor(b*h, 1, s.fwdMapFn)
		return
	}
	rows := b * h * s.nblk
	if !s.inplace {
		kernels.ParallelFor(rows, 1, s.prepFn)
	}
	kernels.ParallelFor(b*h*s.sBlocks(), 1, s.sFn)
	kernels.ParallelFor(rows, 1, s.outFn)
}

// krAt returns Kr of token 0, head channel 0 of image b, head hh, and its
// row stride: the in-place qkv activation or the Kr buffer.
func (s *SLA) krAt(b, hh int) ([]float32, int) {
	if s.inplace {
		return s.qkv.Data[b*s.n*3*s.c+s.c+hh*s.d:], 3 * s.c
	}
	return s.kr.Data[b*s.n*s.c+hh*s.d:], s.c
}

// qrAt is krAt for Qr at token tok.
func (s *SLA) qrAt(b, hh, tok int) ([]float32, int) {
	if s.inplace {
		return s.qkv.Data[(b*s.n+tok)*3*s.c+hh*s.d:], 3 * s.c
	}
	return s.qr.Data[(b*s.n+tok)*s.c+hh*s.d:], s.c
}

// fwdMapTask runs the forward of (image, head) pairs [lo, hi) when a task
// is a whole map (task index = pair index).
func (s *SLA) fwdMapTask(lo, hi int) {
	nb := s.sBlocks()
	for t := lo; t < hi; t++ {
		if !s.inplace {
			s.prepTask(t, t+1)
		}
		s.sTask(t*nb, (t+1)*nb)
		s.outTask(t, t+1)
	}
}

func (s *SLA) sBlocks() int { return (s.d + sBlock - 1) / sBlock }

// rowTask decodes a task index over (image, head, block of rpt map rows),
// numbered (image*heads + head)*nblk + block, into the image, head, first
// token, the offset of that token's head channels in a [B,N,C] buffer and
// the block's map rows [y0, y1). Blocks of whole rows keep a task's tokens
// contiguous, and 40-odd tokens per task let the head products run on full
// 8-row tiles; few images and heads fall back to single rows (parallelism).
func (s *SLA) rowTask(t int) (b, hh, tok, off, y0, y1 int) {
	per := s.Heads * s.nblk
	b = t / per
	hh = (t % per) / s.nblk
	y0 = (t % s.nblk) * s.rpt
	y1 = min(s.H, y0+s.rpt)
	tok = y0 * s.W
	return b, hh, tok, (b*s.n+tok)*s.c + hh*s.d, y0, y1
}

// prepTask applies the ReLUs and the positional encoding for whole map
// rows, writing each row's Σ_j ReLU(K+P)_j into ksumPart.
func (s *SLA) prepTask(lo, hi int) {
	c, d := s.c, s.d
	for t := lo; t < hi; t++ {
		b, hh, tok, off, y0, y1 := s.rowTask(t)
		q := s.qkv.Data[(b*s.n+tok)*3*c+hh*d:]
		kernels.SLAPrep(s.qr.Data[off:], s.kr.Data[off:], s.ksumPart.Data[t*d:],
			q, q[c:], s.PosEnc.W.Data[tok*c+hh*d:], (y1-y0)*s.W, d, 3*c, c)
	}
}

// sTask computes rows [r0, r0+16) of S = KrᵀV for one (image, head), and
// the same rows of ksum from the map-row partials.
func (s *SLA) sTask(lo, hi int) {
	n, c, d, h := s.n, s.c, s.d, s.Heads
	nb := s.sBlocks()
	for t := lo; t < hi; t++ {
		bh, r0 := t/nb, (t%nb)*sBlock
		r1 := min(r0+sBlock, d)
		b, hh := bh/h, bh%h
		ks := s.ksum.Data[bh*d+r0 : bh*d+r1]
		kr, ld := s.krAt(b, hh)
		if s.inplace {
			clear(ks)
			kernels.ColSumsStrided(ks, kr[r0:], n, r1-r0, ld)
		} else {
			copy(ks, s.ksumPart.Data[bh*s.nblk*d+r0:])
			for y := 1; y < s.nblk; y++ {
				for i, v := range s.ksumPart.Data[(bh*s.nblk+y)*d+r0 : (bh*s.nblk+y)*d+r1] {
					ks[i] += v
				}
			}
		}
		kernels.HeadMatMul(r1-r0, d, n, kr[r0:], 1, ld, s.qkv.Data[b*n*3*c+2*c+hh*d:], 3*c,
			s.s.Data[(bh*d+r0)*d:], d, false)
	}
}

// outTask computes one block of map rows of the output: num = Qr·S, the
// normaliser and the conv bias, then the depthwise conv of V added on top.
func (s *SLA) outTask(lo, hi int) {
	n, c, d, W := s.n, s.c, s.d, s.W
	for t := lo; t < hi; t++ {
		b, hh, tok, off, y0, y1 := s.rowTask(t)
		bh := b*s.Heads + hh
		m := (y1 - y0) * W
		qr, ldq := s.qrAt(b, hh, tok)
		kernels.HeadMatMul(m, d, d, qr, ldq, 1, s.s.Data[bh*d*d:], d, s.num.Data[off:], c, false)
		kernels.SLANormalizeQ(s.o.Data[off:], s.z.Data[bh*n+tok:], s.num.Data[off:], qr,
			s.ksum.Data[bh*d:], s.DWCBias.W.Data, m, d, c, ldq)
		kernels.DWConvCL(s.o.Data[b*n*c+hh*d:], c, s.qkv.Data[b*n*3*c+2*c+hh*d:], 3*c, s.H, W, d, s.Kernel,
			s.wt.Data, nil, y0, y1, true)
	}
}

// backwardCore maps the gradient of the merged-head output [B,N,C] to the
// gradient of qkv [B,N,3C], accumulating the positional encoding and DWC
// gradients.
func (s *SLA) backwardCore(dout *tensor.Tensor) *tensor.Tensor {
	if s.qkv == nil {
		panic(fmt.Sprintf("nn.SLA(%s): Backward before Forward", s.PosEnc.Name))
	}
	if !tensor.SameShape(dout, s.o) {
		panic(fmt.Sprintf("nn.SLA(%s): gradient %v, want %v", s.PosEnc.Name, dout.Shape, s.o.Shape))
	}
	b, n, c, d, h := s.b, s.n, s.c, s.d, s.Heads
	s.dout = dout
	tensor.Ensure(&s.g, b, n, c)
	tensor.Ensure(&s.dden, b, h, n)
	tensor.Ensure(&s.dS, b, h, d, d)
	tensor.Ensure(&s.sT, b, h, d, d)
	tensor.Ensure(&s.dsT, b, h, d, d)
	tensor.Ensure(&s.dks, b, h, d)
	tensor.Ensure(&s.dqkv, b, n, 3*c)

	// Finishing dQ/dK/dV and the DWC input gradient go block by block; the
	// DWC weight gradient needs a reduction, so the blocks are dealt in
	// contiguous groups, each with its own partial sums, added in group
	// order at the end. The group count follows from the problem size
	// alone (slaGroups), so the sum is the same whatever the thread count.
	rows := b * h * s.nblk
	kk := s.Kernel * s.Kernel
	s.groups = slaGroups(rows)
	clear(tensor.Ensure(&s.part, s.groups, kk*d+d).Data)
	if s.nblk == 1 {
		// Whole maps: every pass of a pair back to back, one region.
		kernels.ParallelFor(s.groups, 1, s.bwdMapFn)
	} else {
		kernels.ParallelFor(rows, 1, s.gradFn)
		kernels.ParallelFor(b*h*s.sBlocks(), 1, s.dsFn)
		kernels.ParallelFor(b*h, 1, s.transFn)
		kernels.ParallelFor(s.groups, 1, s.inGradFn)
	}
	wg, bg := s.DWCWeight.G.Data, s.DWCBias.G.Data
	for gi := 0; gi < s.groups; gi++ {
		p := s.part.Data[gi*(kk*d+d):]
		kernels.DWWeightAddChannelMajor(wg, p[:kk*d], d, s.Kernel)
		for i, v := range p[kk*d : kk*d+d] {
			bg[i] += v
		}
	}
	kernels.ParallelFor(n, 16, s.posGradFn)
	return s.dqkv
}

// gradTask computes, for one block of map rows, G = z·dO and the
// denominator gradient dden = -z·(G·num).
func (s *SLA) gradTask(lo, hi int) {
	n, c, d := s.n, s.c, s.d
	for t := lo; t < hi; t++ {
		b, hh, tok, off, y0, y1 := s.rowTask(t)
		bh := b*s.Heads + hh
		kernels.SLAGrad(s.g.Data[off:], s.dden.Data[bh*n+tok:], s.dout.Data[off:], s.num.Data[off:],
			s.z.Data[bh*n+tok:], (y1-y0)*s.W, d, c)
	}
}

// dsTask computes rows [r0, r0+16) of dS = Qrᵀ·G and of dksum = Qrᵀ·dden
// for one (image, head).
func (s *SLA) dsTask(lo, hi int) {
	n, c, d, h := s.n, s.c, s.d, s.Heads
	nb := s.sBlocks()
	for t := lo; t < hi; t++ {
		bh, r0 := t/nb, (t%nb)*sBlock
		r1 := min(r0+sBlock, d)
		b, hh := bh/h, bh%h
		off := b*n*c + hh*d
		kernels.HeadMatMul(r1-r0, d, n, s.qr.Data[off+r0:], 1, c, s.g.Data[off:], c, s.dS.Data[(bh*d+r0)*d:], d, false)
		kernels.HeadMatMul(r1-r0, 1, n, s.qr.Data[off+r0:], 1, c, s.dden.Data[bh*n:], 1, s.dks.Data[bh*d+r0:], 1, false)
	}
}

// transTask transposes S and dS of (image, head) pairs [lo, hi), so that
// the products G·Sᵀ and V·dSᵀ read their right operand by rows.
func (s *SLA) transTask(lo, hi int) {
	d := s.d
	for t := lo; t < hi; t++ {
		kernels.TransposeScale(s.sT.Data[t*d*d:(t+1)*d*d], d, s.s.Data[t*d*d:(t+1)*d*d], d, d, d, 1)
		kernels.TransposeScale(s.dsT.Data[t*d*d:(t+1)*d*d], d, s.dS.Data[t*d*d:(t+1)*d*d], d, d, d, 1)
	}
}

// bwdMapTask runs the backward of groups [lo, hi) of (image, head) pairs
// when a task is a whole map.
func (s *SLA) bwdMapTask(lo, hi int) {
	kk := s.Kernel * s.Kernel
	d, nb, tasks := s.d, s.sBlocks(), s.b*s.Heads
	for gi := lo; gi < hi; gi++ {
		p := s.part.Data[gi*(kk*d+d) : (gi+1)*(kk*d+d)]
		for t := gi * tasks / s.groups; t < (gi+1)*tasks/s.groups; t++ {
			s.gradTask(t, t+1)
			s.dsTask(t*nb, (t+1)*nb)
			s.transTask(t, t+1)
			s.inGradOne(t, p)
		}
	}
}

// inGradTask handles groups [lo, hi) of row-block tasks: dQr = G·Sᵀ,
// dKr = V·dSᵀ, dV = Kr·dS written into dqkv, the ReLU masks and the
// normaliser terms, the DWC input gradient added to dV, and the DWC weight
// and bias gradients into the group's partial sums.
func (s *SLA) inGradTask(lo, hi int) {
	kk := s.Kernel * s.Kernel
	tasks := s.b * s.Heads * s.nblk
	for gi := lo; gi < hi; gi++ {
		p := s.part.Data[gi*(kk*s.d+s.d) : (gi+1)*(kk*s.d+s.d)]
		for t := gi * tasks / s.groups; t < (gi+1)*tasks/s.groups; t++ {
			s.inGradOne(t, p)
		}
	}
}

// inGradOne is inGradTask's work for task t, the DWC weight and bias
// gradients going into the partial sums p.
func (s *SLA) inGradOne(t int, p []float32) {
	n, c, d, W := s.n, s.c, s.d, s.W
	kk := s.Kernel * s.Kernel
	dq := s.dqkv.Data
	b, hh, tok, off, y0, y1 := s.rowTask(t)
	bh := b*s.Heads + hh
	m := (y1 - y0) * W
	qoff := (b*n+tok)*3*c + hh*d
	dd := bh * d * d
	kernels.HeadMatMul(m, d, d, s.g.Data[off:], c, 1, s.sT.Data[dd:], d, dq[qoff:], 3*c, false)
	kernels.HeadMatMul(m, d, d, s.qkv.Data[qoff+2*c:], 3*c, 1, s.dsT.Data[dd:], d, dq[qoff+c:], 3*c, false)
	kernels.HeadMatMul(m, d, d, s.kr.Data[off:], c, 1, s.dS.Data[dd:], d, dq[qoff+2*c:], 3*c, false)
	kernels.SLAInputGrad(dq[qoff:], dq[qoff+c:], s.qr.Data[off:], s.kr.Data[off:],
		s.dden.Data[bh*n+tok:], s.ksum.Data[bh*d:], s.dks.Data[bh*d:], m, d, 3*c, c)
	vin := s.qkv.Data[b*n*3*c+2*c+hh*d:]
	dv := dq[b*n*3*c+2*c+hh*d:]
	dy := s.dout.Data[b*n*c+hh*d:]
	kernels.DWConvCLBackwardInput(dv, 3*c, dy, c, s.H, W, d, s.Kernel, s.wt.Data, y0, y1, true)
	kernels.DWConvCLBackwardWeight(p[:kk*d], p[kk*d:], vin, 3*c, dy, c, s.H, W, d, s.Kernel, y0, y1)
}

// posGradTask adds Σ_b dK[b] to the positional encoding gradient for tokens
// [lo, hi): P is added to K before the ReLU, so its gradient is dK summed
// over the batch.
func (s *SLA) posGradTask(lo, hi int) {
	c := s.c
	pg := s.PosEnc.G.Data
	for i := lo; i < hi; i++ {
		kernels.ColSumsStrided(pg[i*c:i*c+c], s.dqkv.Data[i*3*c+c:], s.b, c, s.n*3*c)
	}
}
