package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// StripeAttention is CSwin's cross-shaped window attention with LePE, the
// softmax attention of its 'S' stages (docs/method.md 3.3, 4.4; official
// `slab_cswin.py` CSWinBlock with LePEAttention):
//
//	[q | k | v] = QKV(x)                        one Linear C -> 3C
//	branch 0: channels [0, C/2), heads h/2, vertical stripes (full height, width sw)
//	branch 1: channels [C/2, C), heads h/2, horizontal stripes (height sw, full width)
//	per stripe: softmax(q kᵀ d^-0.5) v + LePE(v)   LePE on the stripe's own map
//	y = Proj(concat of the branches on channels)
//
// Branch 0 is vertical as in the official code (idx 0: H_sp = resolution,
// W_sp = split). When the stripe covers the map (sw >= h and sw >= w: CSwin
// stage 4, or a stage whose resolution equals its split) there is one
// branch over all channels and heads, one window per image. Parameter
// names follow the official block at name (e.g. "stage3.0"): qkv, proj,
// attns.{0,1}.get_v.
//
// Design: each branch gathers its channel slice of q, k, v into
// window-major order [B*windows, tokens, 3*Cb] (a stripe's tokens as a
// row-major hs x ws map), runs AttnCore on the windows as independent
// sequences and LePE on each window's V, then scatters the result into
// the merged output; backward is the same in reverse. The gathers are
// permutations (a few copies of the qkv activation), negligible next to
// the attention, and every reduction inside is thread-count independent.
type StripeAttention struct {
	QKV, Proj *Linear
	LePE      []*LePE // one per branch
	Heads     int
	Split     int
	H, W      int

	br       []stripeBranch
	b        int
	merged   *tensor.Tensor
	dqkv     *tensor.Tensor
	shp      []int
	gatherFn func(lo, hi int)
	stage    int // what gatherFn moves (see gatherTask)
	cur      *stripeBranch
	src      []float32
}

// stripeBranch is one branch: channels [c0, c0+cb) of each of q, k, v,
// windows of hs x ws tokens.
type stripeBranch struct {
	c0, cb, hs, ws int
	core           AttnCore
	lepe           *LePE
	win, dwin, do  *tensor.Tensor
}

// NewStripeAttention builds the attention of one CSwin block at name for
// an h x w map: qkv (dim -> 3*dim, bias qkvBias), proj (with bias) and one
// LePE per branch. Two branches need sw to divide h and w, an even number
// of heads and dim divisible by 2*heads/2.
func NewStripeAttention(name string, dim, heads, sw, h, w int, qkvBias bool) *StripeAttention {
	if heads < 1 || dim%heads != 0 || sw < 1 || h < 1 || w < 1 {
		panic(fmt.Sprintf("nn.NewStripeAttention(%s): dim %d, %d heads, stripe %d, map %dx%d", name, dim, heads, sw, h, w))
	}
	s := &StripeAttention{
		QKV:   NewLinear(name+".qkv", dim, 3*dim, qkvBias),
		Proj:  NewLinear(name+".proj", dim, dim, true),
		Heads: heads, Split: sw, H: h, W: w,
	}
	if sw >= h && sw >= w {
		s.br = []stripeBranch{{c0: 0, cb: dim, hs: h, ws: w, core: AttnCore{Heads: heads}}}
	} else {
		if heads%2 != 0 || h%sw != 0 || w%sw != 0 {
			panic(fmt.Sprintf("nn.NewStripeAttention(%s): two stripe branches need an even head count (have %d) and stripe %d dividing the %dx%d map", name, heads, sw, h, w))
		}
		cb := dim / 2
		s.br = []stripeBranch{
			{c0: 0, cb: cb, hs: h, ws: sw, core: AttnCore{Heads: heads / 2}},
			{c0: cb, cb: cb, hs: sw, ws: w, core: AttnCore{Heads: heads / 2}},
		}
	}
	for i := range s.br {
		l := NewLePE(fmt.Sprintf("%s.attns.%d.get_v", name, i), s.br[i].cb)
		s.br[i].lepe = l
		s.LePE = append(s.LePE, l)
	}
	return s
}

// windows returns the number of windows per image of branch br.
func (s *StripeAttention) windows(br *stripeBranch) int { return (s.H / br.hs) * (s.W / br.ws) }

// Forward maps [B, H*W, C] to [B, H*W, C].
func (s *StripeAttention) Forward(x *tensor.Tensor) *tensor.Tensor {
	return s.Proj.Forward(s.mix(x))
}

// ForwardAdd is res + Forward(x), the residual added in proj's epilogue
// (the block's residual connection without a pass of its own); the bits
// are Forward's followed by the sum.
func (s *StripeAttention) ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor {
	return s.Proj.ForwardAdd(s.mix(x), res)
}

// mix is Forward up to proj: the branches' attention merged into [B,N,C].
func (s *StripeAttention) mix(x *tensor.Tensor) *tensor.Tensor {
	c := s.QKV.In
	if len(x.Shape) != 3 || x.Shape[1] != s.H*s.W || x.Shape[2] != c {
		panic(fmt.Sprintf("nn.StripeAttention(%s): input %v, want [B,%d*%d,%d]", s.QKV.Weight.Name, x.Shape, s.H, s.W, c))
	}
	if s.gatherFn == nil {
		s.gatherFn = s.gatherTask
	}
	s.b = x.Shape[0]
	qkv := s.QKV.Forward(x)
	n := s.H * s.W
	merged := ensureDims(&s.merged, &s.shp, s.b, n, c)
	for i := range s.br {
		br := &s.br[i]
		nw, t := s.b*s.windows(br), br.hs*br.ws
		win := ensureDims(&br.win, &s.shp, nw, t, 3*br.cb)
		s.run(br, 0, qkv.Data)
		ld := 3 * br.cb
		o := br.core.Forward(nw, t, t, br.cb, win.Data, ld, t*ld, win.Data[br.cb:], ld, t*ld, win.Data[2*br.cb:], ld, t*ld)
		br.lepe.Forward(o.Data, br.cb, t*br.cb, win.Data[2*br.cb:], ld, t*ld, nw, br.hs, br.ws)
		s.run(br, 1, o.Data)
	}
	return merged
}

// run moves data of branch br with gatherTask stage st over every window.
func (s *StripeAttention) run(br *stripeBranch, st int, src []float32) {
	s.cur, s.stage, s.src = br, st, src
	kernels.ParallelFor(s.b*s.windows(br), 1, s.gatherFn)
}

// gatherTask moves windows [lo, hi) of s.cur between the image layout
// [B, H*W, ·] and the window layout [B*windows, hs*ws, ·]:
//
//	stage 0: qkv [.., 3C] -> win [.., 3Cb]      (branch channels of q, k, v)
//	stage 1: o [.., Cb] -> merged [.., C]       (at channel c0)
//	stage 2: dmerged [.., C] -> do [.., Cb]
//	stage 3: dwin [.., 3Cb] -> dqkv [.., 3C]
func (s *StripeAttention) gatherTask(lo, hi int) {
	br := s.cur
	c, cb := s.QKV.In, br.cb
	nx := s.W / br.ws
	per := s.windows(br)
	t := br.hs * br.ws
	for wi := lo; wi < hi; wi++ {
		b, r := wi/per, wi%per
		y0, x0 := (r/nx)*br.hs, (r%nx)*br.ws
		for i := 0; i < br.hs; i++ {
			for j := 0; j < br.ws; j++ {
				img := b*s.H*s.W + (y0+i)*s.W + x0 + j // token in the image layout
				tok := wi*t + i*br.ws + j              // token in the window layout
				switch s.stage {
				case 0:
					src, dst := s.src[img*3*c:], br.win.Data[tok*3*cb:]
					copy(dst[:cb], src[br.c0:])
					copy(dst[cb:2*cb], src[c+br.c0:])
					copy(dst[2*cb:3*cb], src[2*c+br.c0:])
				case 1:
					copy(s.merged.Data[img*c+br.c0:img*c+br.c0+cb], s.src[tok*cb:])
				case 2:
					copy(br.do.Data[tok*cb:(tok+1)*cb], s.src[img*c+br.c0:])
				case 3:
					src, dst := br.dwin.Data[tok*3*cb:], s.dqkv.Data[img*3*c:]
					copy(dst[br.c0:br.c0+cb], src[:cb])
					copy(dst[c+br.c0:c+br.c0+cb], src[cb:2*cb])
					copy(dst[2*c+br.c0:2*c+br.c0+cb], src[2*cb:3*cb])
				}
			}
		}
	}
}

// Backward returns dx and accumulates the gradients of qkv, proj and
// every LePE.
func (s *StripeAttention) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if s.merged == nil {
		panic(fmt.Sprintf("nn.StripeAttention(%s): Backward before Forward", s.QKV.Weight.Name))
	}
	dm := s.Proj.Backward(dy)
	c := s.QKV.In
	ensureDims(&s.dqkv, &s.shp, s.b, s.H*s.W, 3*c)
	for i := range s.br {
		br := &s.br[i]
		nw, t := s.b*s.windows(br), br.hs*br.ws
		ensureDims(&br.do, &s.shp, nw, t, br.cb)
		dwin := ensureDims(&br.dwin, &s.shp, nw, t, 3*br.cb)
		s.run(br, 2, dm.Data)
		br.core.Backward(br.do, dwin.Data, dwin.Data[br.cb:], dwin.Data[2*br.cb:])
		br.lepe.Backward(dwin.Data[2*br.cb:], br.do.Data)
		s.run(br, 3, nil)
	}
	return s.QKV.Backward(s.dqkv)
}

// Params lists qkv, proj, then each branch's LePE.
func (s *StripeAttention) Params() []*Param {
	ps := append(s.QKV.Params(), s.Proj.Params()...)
	for _, l := range s.LePE {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Buffers is empty.
func (s *StripeAttention) Buffers() []*Buffer { return nil }
