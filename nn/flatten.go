package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// FocusedLinearAttention is FLatten's focused linear attention, the
// baseline SLAB is compared with (docs/method.md 3.4). With [Q|K|V] =
// qkv(x), P the positional encoding [1,N,C] and s = softplus(scale)
// (scale [1,1,C], learned), each token's full C-channel vectors go through
//
//	q = (ReLU(Q) + 1e-6) / s,  k = (ReLU(K + P) + 1e-6) / s
//	q ← q^p · ||q|| / ||q^p||,  k likewise     (p = Focusing, norms over all C channels)
//
// and then, per head, exactly SLA's linear attention with the same 1e-6 in
// the denominator and the same depthwise conv of V (kernels shared by the
// heads), heads merged, proj.
//
// Design: the focused q and k are strictly positive, so SLA's ReLU is the
// identity on them and its ReLU masks pass every gradient. The layer
// therefore writes [q | k | V] into a qkv-shaped buffer and runs SLA's own
// fused core on it (an SLA sharing this layer's DWC parameters, with a zero
// positional encoding that is not a parameter of the model), instead of a
// second linear-attention pipeline; around it, one row pass applies the
// focusing function and one undoes it in the backward. The scale and
// positional encoding gradients are column sums (fixed order, whatever the
// thread count).
type FocusedLinearAttention struct {
	QKV, Proj                         *Linear
	PosEnc, Scale, DWCWeight, DWCBias *Param
	Heads, H, W, Kernel, Focusing     int

	core SLA // the linear attention on [q | k | V]

	qkv                 *tensor.Tensor // QKV's output, not owned
	fqkv, dfqkv         *tensor.Tensor // [q | k | V] and its gradient (the core's)
	u                   *tensor.Tensor // [B,N,2C]: (ReLU(.)+1e-6)/s of Q and K+P
	norms               *tensor.Tensor // [B*N, 4]: ||u_q||, ||u_q^p||, ||u_k||, ||u_k^p||
	inv, sig, dsSum     *tensor.Tensor // [C]: 1/softplus(scale), its derivative, Σ of dsPart
	dqkv, dsPart        *tensor.Tensor
	b, n, c             int
	fwdFn, bwdFn, posFn func(lo, hi int)
}

// NewFocusedLinearAttention builds name.qkv (dim -> 3*dim), name.proj
// (dim -> dim, with bias), name.positional_encoding [1,h*w,dim],
// name.scale [1,1,dim], name.dwc.weight [d,1,k,k] and name.dwc.bias [d]
// (d = dim/heads) for an h x w token map (a window) and focusing power p
// (FLatten's focusing_factor, 3 in every config; 1..6 supported, the
// official code switches to a max-normalised form above 6). Parameters
// start at zero (scale 0 is the official init: s = ln 2); the model
// initialises the others.
func NewFocusedLinearAttention(name string, dim, heads, h, w, kernel, p int, qkvBias bool) *FocusedLinearAttention {
	if p < 1 || p > 6 {
		panic(fmt.Sprintf("nn.NewFocusedLinearAttention(%s): focusing factor %d, want 1..6", name, p))
	}
	s := NewSLA(name, dim, heads, h, w, kernel, qkvBias)
	f := &FocusedLinearAttention{
		QKV: s.QKV, Proj: s.Proj, PosEnc: s.PosEnc, DWCWeight: s.DWCWeight, DWCBias: s.DWCBias,
		Scale: NewParam(name+".scale", false, 1, 1, dim),
		Heads: heads, H: h, W: w, Kernel: kernel, Focusing: p,
	}
	// The core adds no positional encoding of its own: P enters before the
	// focusing function, here.
	f.core = SLA{
		PosEnc:    NewParam(name+".positional_encoding(core, zero)", false, 1, h*w, dim),
		DWCWeight: s.DWCWeight, DWCBias: s.DWCBias,
		Heads: heads, H: h, W: w, Kernel: kernel,
	}
	return f
}

// Forward maps [B,N,C] tokens (N = H*W) to [B,N,C].
func (f *FocusedLinearAttention) Forward(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 || x.Shape[1] != f.H*f.W || x.Shape[2] != f.QKV.In {
		panic(fmt.Sprintf("nn.FocusedLinearAttention(%s): input %v, want [B,%d,%d]", f.PosEnc.Name, x.Shape, f.H*f.W, f.QKV.In))
	}
	if f.fwdFn == nil {
		f.fwdFn, f.bwdFn, f.posFn = f.focusTask, f.unfocusTask, f.posGradTask
	}
	qkv := f.QKV.Forward(x)
	b, n, c := x.Shape[0], x.Shape[1], x.Shape[2]
	f.qkv, f.b, f.n, f.c = qkv, b, n, c
	tensor.Ensure(&f.fqkv, b, n, 3*c)
	tensor.Ensure(&f.u, b, n, 2*c)
	tensor.Ensure(&f.norms, b*n, 4)
	inv, sig := tensor.Ensure(&f.inv, c), tensor.Ensure(&f.sig, c)
	for i, v := range f.Scale.W.Data {
		// torch.nn.Softplus (beta 1, threshold 20) and its derivative; the
		// rows multiply by 1/s (within an ulp of dividing, and several
		// times cheaper).
		sp, e := float64(v), math.Exp(float64(v))
		if v <= 20 {
			sp = math.Log1p(e)
		}
		inv.Data[i], sig.Data[i] = float32(1/sp), float32(e/(1+e))
	}
	kernels.ParallelFor(b*n, 16, f.fwdFn)
	return f.Proj.Forward(f.core.forwardCore(f.fqkv))
}

// focusTask applies the focusing function to the Q and K+P rows of tokens
// [lo, hi) and copies their V.
func (f *FocusedLinearAttention) focusTask(lo, hi int) {
	c, n := f.c, f.n
	pos := f.PosEnc.W.Data
	for r := lo; r < hi; r++ {
		src := f.qkv.Data[r*3*c : (r+1)*3*c]
		dst := f.fqkv.Data[r*3*c : (r+1)*3*c]
		u := f.u.Data[r*2*c : (r+1)*2*c]
		nm := f.norms.Data[r*4 : r*4+4]
		nm[0], nm[1] = f.focus(dst[:c], u[:c], src[:c], nil)
		nm[2], nm[3] = f.focus(dst[c:2*c], u[c:], src[c:2*c], pos[(r%n)*c:(r%n+1)*c])
		copy(dst[2*c:], src[2*c:])
	}
}

// focus writes one token's focused vector into out and u = (ReLU(x + pos)
// + 1e-6)/s into u, returning ||u|| and ||u^p||. (Scalar Go, like the
// other per-channel passes of nn; two accumulators per sum halve the
// dependency chain. Its cost is a third of the layer's forward at Swin-T
// stage 1, see BenchmarkFocusedLinearAttention.)
func (f *FocusedLinearAttention) focus(out, u, x, pos []float32) (n1, np float32) {
	c := len(x)
	inv, u, out := f.inv.Data[:c], u[:c], out[:c]
	if pos != nil {
		pos = pos[:c]
	}
	p := f.Focusing
	var s1a, s1b, spa, spb float32
	for i, v := range x {
		if pos != nil {
			v += pos[i]
		}
		ui := (max(v, 0) + 1e-6) * inv[i] // max, not a branch: ReLU's sign is a coin flip
		u[i] = ui
		vp := ipow(ui, p)
		out[i] = vp
		if i&1 == 0 {
			s1a += ui * ui
			spa += vp * vp
		} else {
			s1b += ui * ui
			spb += vp * vp
		}
	}
	n1, np = sqrt32(s1a+s1b), sqrt32(spa+spb)
	a := n1 / np
	for i := range out {
		out[i] *= a
	}
	return n1, np
}

// ipow is x^p for a small integer p >= 1 (FLatten's p = 3 unrolled).
func ipow(x float32, p int) float32 {
	switch p {
	case 3:
		return x * x * x
	case 2:
		return x * x
	}
	y := x
	for ; p > 1; p-- {
		y *= x
	}
	return y
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// Backward returns dx and accumulates the gradients of qkv, proj, the
// positional encoding, scale and the DWC.
func (f *FocusedLinearAttention) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if f.qkv == nil {
		panic(fmt.Sprintf("nn.FocusedLinearAttention(%s): Backward before Forward", f.PosEnc.Name))
	}
	f.dfqkv = f.core.backwardCore(f.Proj.Backward(dy))
	f.core.PosEnc.G.Zero() // the core's zero encoding is not learned
	b, n, c := f.b, f.n, f.c
	tensor.Ensure(&f.dqkv, b, n, 3*c)
	tensor.Ensure(&f.dsPart, b*n, c)
	kernels.ParallelFor(b*n, 16, f.bwdFn)
	// d scale = softplus'(scale) · Σ_tokens ∂L/∂s
	ds := tensor.Ensure(&f.dsSum, c)
	ds.Zero()
	kernels.ColSums(ds.Data, f.dsPart.Data, b*n, c)
	for i, v := range ds.Data {
		f.Scale.G.Data[i] += f.sig.Data[i] * v
	}
	kernels.ParallelFor(n, 16, f.posFn)
	return f.QKV.Backward(f.dqkv)
}

// unfocusTask maps the core's gradient of the focused q, k of tokens
// [lo, hi) back to Q and K (written into dqkv with dV), and writes the
// tokens' ∂L/∂s terms into dsPart.
func (f *FocusedLinearAttention) unfocusTask(lo, hi int) {
	c, n := f.c, f.n
	pos := f.PosEnc.W.Data
	for r := lo; r < hi; r++ {
		g := f.dfqkv.Data[r*3*c : (r+1)*3*c]
		dx := f.dqkv.Data[r*3*c : (r+1)*3*c]
		x := f.qkv.Data[r*3*c : (r+1)*3*c]
		u := f.u.Data[r*2*c : (r+1)*2*c]
		nm := f.norms.Data[r*4 : r*4+4]
		ds := f.dsPart.Data[r*c : (r+1)*c]
		clear(ds)
		f.unfocus(dx[:c], ds, g[:c], u[:c], x[:c], nil, nm[0], nm[1])
		f.unfocus(dx[c:2*c], ds, g[c:2*c], u[c:], x[c:2*c], pos[(r%n)*c:(r%n+1)*c], nm[2], nm[3])
		copy(dx[2*c:], g[2*c:])
	}
}

// unfocus is focus's backward for one token: with v = u^p, f = v·n1/np,
// G = Σ g·v,
//
//	∂L/∂v = (n1/np)·(g - (G/np)·v/np),  ∂L/∂n1 = G/np,
//	∂L/∂u = p·u^(p-1)·∂L/∂v + (G/np)·u/n1,
//
// then ∂L/∂x = [x + pos > 0]·∂L/∂u / s and this token's ∂L/∂s = -∂L/∂u·u/s
// (added into ds). G/np and v/np are kept apart rather than forming np³,
// which underflows float32 for a token whose channels are all at the 1e-6
// floor.
func (f *FocusedLinearAttention) unfocus(dx, ds, g, u, x, pos []float32, n1, np float32) {
	c := len(g)
	p := f.Focusing
	inv, u, x, dx, ds := f.inv.Data[:c], u[:c], x[:c], dx[:c], ds[:c]
	if pos != nil {
		pos = pos[:c]
	}
	var G float32
	for i, gi := range g {
		G += gi * ipow(u[i], p)
	}
	a, gn := n1/np, G/np
	cn, gnn, fp := gn/n1, gn/np, float32(p)
	for i, gi := range g {
		ui := u[i]
		vp1 := float32(1) // u^(p-1)
		if p > 1 {
			vp1 = ipow(ui, p-1)
		}
		dv := a * (gi - gnn*(vp1*ui))
		du := (fp*vp1*dv + cn*ui) * inv[i]
		v := x[i]
		if pos != nil {
			v += pos[i]
		}
		var keep uint32 // ReLU's mask as bits: an integer select compiles without a branch
		if v > 0 {
			keep = ^uint32(0)
		}
		dx[i] = math.Float32frombits(math.Float32bits(du) & keep)
		ds[i] -= du * ui
	}
}

// posGradTask adds Σ_b dK[b] to the positional encoding gradient for
// tokens [lo, hi) (batch order fixed).
func (f *FocusedLinearAttention) posGradTask(lo, hi int) {
	c := f.c
	pg := f.PosEnc.G.Data
	for i := lo; i < hi; i++ {
		kernels.ColSumsStrided(pg[i*c:i*c+c], f.dqkv.Data[i*3*c+c:], f.b, c, f.n*3*c)
	}
}

// Params lists qkv, proj, positional_encoding, scale, dwc.weight and
// dwc.bias.
func (f *FocusedLinearAttention) Params() []*Param {
	ps := append(f.QKV.Params(), f.Proj.Params()...)
	return append(ps, f.PosEnc, f.Scale, f.DWCWeight, f.DWCBias)
}

// Buffers is empty.
func (f *FocusedLinearAttention) Buffers() []*Buffer { return nil }
