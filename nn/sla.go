package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// SLA is SLAB's simplified linear attention (SLAB.md 3.1):
//
//	SLA(x) = proj( concat_h [ ReLU(Q_h)·(ReLU(K_h+P_h)ᵀV_h) / (ReLU(Q_h)·Σ_j ReLU(K_h+P_h)_j + 1e-6) + DWC(V_h) ] )
//
// with [Q|K|V] = qkv(x), P the learned positional encoding [1,N,C] added to
// K only, and DWC one depthwise k x k conv over each head's V seen as a
// d x H x W map (token index = row*W + col), its d filters shared by all
// heads.
//
// Design: the cost is four d x d x N matrix products per head forward
// (S = KᵀV, then Q·S) and four backward; they go through kernels.Gemm
// reading Q, K, V where they lie in the qkv activation (row stride 3C), so
// no head is ever transposed or packed by this layer. Everything else is
// two fused sweeps forward (ReLU + positional encoding + Σ_j K_j; then
// normaliser + depthwise conv + bias into the merged-head output) and three
// backward, parallel over (image, head, map row) with worker functions bound
// once, so a steady-state pass allocates nothing here. No N x N matrix is
// formed, so cost and memory are linear in N.
type SLA struct {
	QKV, Proj                  *Linear
	PosEnc, DWCWeight, DWCBias *Param
	Heads, H, W, Kernel        int

	// Forward state kept for Backward (valid until the next Forward).
	qkv                *tensor.Tensor // QKV's output [B,N,3C], not owned
	qr, kr, num, o     *tensor.Tensor // [B,N,C]: ReLU(Q), ReLU(K+P), Q·S, output
	ksum, s, z, wt     *tensor.Tensor // [B,h,d], [B,h,d,d], [B,h,N], tap-major DWC weight
	g, dqkv, dden, dS  *tensor.Tensor // backward scratch
	dks, part, dout    *tensor.Tensor
	ksumPart           *tensor.Tensor // per map row Σ_j ReLU(K+P)_j [B*h*H, d]
	b, n, c, d, groups int

	prepFn, outFn, gradFn, ksumGradFn, inGradFn, posGradFn func(lo, hi int)
	headFwdFn, headBwdFn                                   func(lo, hi int)
}

// NewSLA builds name.qkv (dim -> 3*dim, [q|k|v]), name.proj (dim -> dim,
// with bias), name.positional_encoding [1,h*w,dim] (zeros, weight-decayed
// as in the official code, SLAB.md gotcha 15), name.dwc.weight [d,1,k,k]
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
	return s.Proj.Forward(s.forwardCore(s.QKV.Forward(x)))
}

// Backward returns dx and accumulates the gradients of all parameters.
func (s *SLA) Backward(dy *tensor.Tensor) *tensor.Tensor {
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
	s.prepFn, s.outFn, s.gradFn = s.prepTask, s.outTask, s.gradTask
	s.ksumGradFn, s.inGradFn, s.posGradFn = s.ksumGradTask, s.inGradTask, s.posGradTask
	s.headFwdFn, s.headBwdFn = s.headFwdTask, s.headBwdTask
}

// forEachHead runs fn over nb (image, head) pairs. With enough pairs to
// keep every thread busy they are dealt to the workers and each GEMM inside
// runs serially (a nested ParallelFor runs inline), which saves the GEMM's
// per-block barriers on these small d x d products; otherwise the pairs go
// one after another and each GEMM parallelises internally. (This is
// GemmStrided's policy, without its per-call closure allocation.)
func forEachHead(nb int, fn func(lo, hi int)) {
	t := kernels.Threads()
	if nb >= 2*t || (nb >= t && nb%t == 0) {
		kernels.ParallelFor(nb, 1, fn)
		return
	}
	fn(0, nb)
}

// headFwdTask computes S = ReLU(K)ᵀV (d x d) and num = ReLU(Q)·S (N x d)
// for (image, head) pairs [lo, hi).
func (s *SLA) headFwdTask(lo, hi int) {
	n, c, d, h := s.n, s.c, s.d, s.Heads
	for t := lo; t < hi; t++ {
		b, hh := t/h, t%h
		off := b*n*c + hh*d
		ks := s.ksum.Data[t*d : (t+1)*d]
		copy(ks, s.ksumPart.Data[t*s.H*d:])
		for y := 1; y < s.H; y++ {
			for i, v := range s.ksumPart.Data[(t*s.H+y)*d : (t*s.H+y+1)*d] {
				ks[i] += v
			}
		}
		sm := s.s.Data[t*d*d : (t+1)*d*d]
		kernels.Gemm(true, false, d, d, n, 1, s.kr.Data[off:], c, s.qkv.Data[b*n*3*c+2*c+hh*d:], 3*c, 0, sm, d)
		kernels.Gemm(false, false, n, d, d, 1, s.qr.Data[off:], c, sm, d, 0, s.num.Data[off:], c)
	}
}

// headBwdTask computes, for (image, head) pairs [lo, hi), dS = ReLU(Q)ᵀG,
// dQr = G·Sᵀ, dKr = V·dSᵀ and dV = ReLU(K)·dS, the last three straight
// into their slots of dqkv.
func (s *SLA) headBwdTask(lo, hi int) {
	n, c, d, h := s.n, s.c, s.d, s.Heads
	for t := lo; t < hi; t++ {
		b, hh := t/h, t%h
		off := b*n*c + hh*d
		qo := b*n*3*c + hh*d
		sm := s.s.Data[t*d*d : (t+1)*d*d]
		ds := s.dS.Data[t*d*d : (t+1)*d*d]
		dq := s.dqkv.Data
		kernels.Gemm(true, false, d, d, n, 1, s.qr.Data[off:], c, s.g.Data[off:], c, 0, ds, d)
		kernels.Gemm(false, true, n, d, d, 1, s.g.Data[off:], c, sm, d, 0, dq[qo:], 3*c)
		kernels.Gemm(false, true, n, d, d, 1, s.qkv.Data[qo+2*c:], 3*c, ds, d, 0, dq[qo+c:], 3*c)
		kernels.Gemm(false, false, n, d, d, 1, s.kr.Data[off:], c, ds, d, 0, dq[qo+2*c:], 3*c)
	}
}

// forwardCore runs the attention between qkv [B,N,3C] and the merged-head
// output [B,N,C] that proj consumes.
func (s *SLA) forwardCore(qkv *tensor.Tensor) *tensor.Tensor {
	s.bind()
	b, n, c3 := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	c, h := c3/3, s.Heads
	d := c / h
	if n != s.H*s.W || c != s.PosEnc.W.Shape[2] {
		panic(fmt.Sprintf("nn.SLA(%s): qkv %v does not match H*W=%d, dim %d", s.PosEnc.Name, qkv.Shape, s.H*s.W, s.PosEnc.W.Shape[2]))
	}
	s.qkv, s.b, s.n, s.c, s.d = qkv, b, n, c, d
	attnEnsure(&s.qr, b, n, c)
	attnEnsure(&s.kr, b, n, c)
	attnEnsure(&s.num, b, n, c)
	attnEnsure(&s.o, b, n, c)
	attnEnsure(&s.ksum, b, h, d)
	attnEnsure(&s.s, b, h, d, d)
	attnEnsure(&s.z, b, h, n)
	k := s.Kernel
	kernels.DWWeightTapMajor(attnEnsure(&s.wt, k*k, d).Data, s.DWCWeight.W.Data, d, k)

	attnEnsure(&s.ksumPart, b*h*s.H, d)
	kernels.ParallelFor(b*h*s.H, 1, s.prepFn)
	forEachHead(b*h, s.headFwdFn)
	kernels.ParallelFor(b*h*s.H, 1, s.outFn)
	return s.o
}

// prepTask applies the ReLUs and the positional encoding for whole map
// rows, writing each row's Σ_j ReLU(K+P)_j into ksumPart; headFwdTask
// sums the H partials of a head. Rows rather than heads as the unit keep
// two threads busy at batch 1 with 3 heads.
func (s *SLA) prepTask(lo, hi int) {
	c, d := s.c, s.d
	for t := lo; t < hi; t++ {
		b, hh, tok, off := s.rowTask(t)
		q := s.qkv.Data[(b*s.n+tok)*3*c+hh*d:]
		kernels.SLAPrep(s.qr.Data[off:], s.kr.Data[off:], s.ksumPart.Data[t*d:],
			q, q[c:], s.PosEnc.W.Data[tok*c+hh*d:], s.W, d, 3*c, c)
	}
}

// rowTask decodes a task index over (image, head, map row) into the image,
// head, first token and the offset of that token's head channels in a
// [B,N,C] buffer.
func (s *SLA) rowTask(t int) (b, hh, tok, off int) {
	rows := s.Heads * s.H
	b = t / rows
	hh = (t % rows) / s.H
	tok = (t % s.H) * s.W
	return b, hh, tok, (b*s.n+tok)*s.c + hh*s.d
}

func (s *SLA) outTask(lo, hi int) {
	n, c, d, W := s.n, s.c, s.d, s.W
	for t := lo; t < hi; t++ {
		b, hh, tok, off := s.rowTask(t)
		bh := b*s.Heads + hh
		kernels.SLANormalize(s.o.Data[off:], s.z.Data[bh*n+tok:], s.num.Data[off:], s.qr.Data[off:],
			s.ksum.Data[bh*d:], W, d, c)
		y := tok / W
		kernels.DWConvCL(s.o.Data[b*n*c+hh*d:], c, s.qkv.Data[b*n*3*c+2*c+hh*d:], 3*c, s.H, W, d, s.Kernel,
			s.wt.Data, s.DWCBias.W.Data, y, y+1, true)
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
	attnEnsure(&s.g, b, n, c)
	attnEnsure(&s.dden, b, h, n)
	attnEnsure(&s.dS, b, h, d, d)
	attnEnsure(&s.dks, b, h, d)
	attnEnsure(&s.dqkv, b, n, 3*c)

	kernels.ParallelFor(b*h*s.H, 1, s.gradFn)
	kernels.ParallelFor(b*h, 1, s.ksumGradFn)
	forEachHead(b*h, s.headBwdFn)
	// Finishing dQ/dK and the DWC input gradient go row by row; the DWC
	// weight gradient needs a reduction, so the rows are dealt in a fixed
	// number of contiguous groups, each with its own partial sums.
	kk := s.Kernel * s.Kernel
	s.groups = min(kernels.Threads(), b*h*s.H)
	clear(attnEnsure(&s.part, s.groups, kk*d+d).Data)
	kernels.ParallelFor(s.groups, 1, s.inGradFn)
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

func (s *SLA) gradTask(lo, hi int) {
	n, c, d := s.n, s.c, s.d
	for t := lo; t < hi; t++ {
		b, hh, tok, off := s.rowTask(t)
		bh := b*s.Heads + hh
		kernels.SLAGrad(s.g.Data[off:], s.dden.Data[bh*n+tok:], s.dout.Data[off:], s.num.Data[off:],
			s.z.Data[bh*n+tok:], s.W, d, c)
	}
}

func (s *SLA) ksumGradTask(lo, hi int) {
	n, c, d, h := s.n, s.c, s.d, s.Heads
	for t := lo; t < hi; t++ {
		b, hh := t/h, t%h
		kernels.SLAKsumGrad(s.dks.Data[t*d:], s.qr.Data[b*n*c+hh*d:], s.dden.Data[t*n:], n, d, c)
	}
}

func (s *SLA) inGradTask(lo, hi int) {
	n, c, d, W := s.n, s.c, s.d, s.W
	kk := s.Kernel * s.Kernel
	tasks := s.b * s.Heads * s.H
	for gi := lo; gi < hi; gi++ {
		p := s.part.Data[gi*(kk*d+d) : (gi+1)*(kk*d+d)]
		for t := gi * tasks / s.groups; t < (gi+1)*tasks/s.groups; t++ {
			b, hh, tok, off := s.rowTask(t)
			bh := b*s.Heads + hh
			qoff := (b*n+tok)*3*c + hh*d
			kernels.SLAInputGrad(s.dqkv.Data[qoff:], s.dqkv.Data[qoff+c:], s.qr.Data[off:], s.kr.Data[off:],
				s.dden.Data[bh*n+tok:], s.ksum.Data[bh*d:], s.dks.Data[bh*d:], W, d, 3*c, c)
			y := tok / W
			vin := s.qkv.Data[b*n*3*c+2*c+hh*d:]
			dv := s.dqkv.Data[b*n*3*c+2*c+hh*d:]
			dy := s.dout.Data[b*n*c+hh*d:]
			kernels.DWConvCLBackwardInput(dv, 3*c, dy, c, s.H, W, d, s.Kernel, s.wt.Data, y, y+1, true)
			kernels.DWConvCLBackwardWeight(p[:kk*d], p[kk*d:], vin, 3*c, dy, c, s.H, W, d, s.Kernel, y, y+1)
		}
	}
}

// posGradTask adds Σ_b dK[b] to the positional encoding gradient for tokens
// [lo, hi): P is added to K before the ReLU, so its gradient is dK summed
// over the batch.
func (s *SLA) posGradTask(lo, hi int) {
	c := s.c
	pg := s.PosEnc.G.Data
	for i := lo; i < hi; i++ {
		dst := pg[i*c : i*c+c]
		for b := 0; b < s.b; b++ {
			src := s.dqkv.Data[(b*s.n+i)*3*c+c:]
			src = src[:c]
			for j, v := range src {
				dst[j] += v
			}
		}
	}
}
