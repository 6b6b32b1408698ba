package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// stripeParams are a StripeAttention's parameters in float64.
type stripeParams struct {
	wqkv, bqkv, wp, bp []float64
	lw, lb             [][]float64 // per branch
}

// stripeWin is one branch's geometry in the reference: channels [c0,
// c0+cb), windows hs x ws.
type stripeWin struct{ c0, cb, hs, ws, heads int }

func stripeBranches(c, heads, sw, h, w int) []stripeWin {
	if sw >= h && sw >= w {
		return []stripeWin{{0, c, h, w, heads}}
	}
	return []stripeWin{{0, c / 2, h, sw, heads / 2}, {c / 2, c / 2, sw, w, heads / 2}}
}

// stripeRef is CSwin's LePE stripe attention from the official module's
// definition (img2windows, per-window softmax attention plus get_v on the
// window's own map, windows2img, concat, proj), in float64.
func stripeRef(x []float64, B, h, w, c, heads, sw int, p *stripeParams) []float64 {
	n := h * w
	qkv := linRef(x, B*n, c, 3*c, p.wqkv, p.bqkv)
	merged := make([]float64, B*n*c)
	for bi, br := range stripeBranches(c, heads, sw, h, w) {
		nx := w / br.ws
		per := (h / br.hs) * nx
		t := br.hs * br.ws
		nw := B * per
		parts := [3][]float64{make([]float64, nw*t*br.cb), make([]float64, nw*t*br.cb), make([]float64, nw*t*br.cb)}
		img := func(wi, tok int) int { // image token of window wi's token tok
			b, r := wi/per, wi%per
			i, j := tok/br.ws, tok%br.ws
			return b*n + ((r/nx)*br.hs+i)*w + (r%nx)*br.ws + j
		}
		for wi := 0; wi < nw; wi++ {
			for tok := 0; tok < t; tok++ {
				for k := 0; k < 3; k++ {
					copy(parts[k][(wi*t+tok)*br.cb:(wi*t+tok+1)*br.cb], qkv[img(wi, tok)*3*c+k*c+br.c0:])
				}
			}
		}
		o := attnRef(parts[0], parts[1], parts[2], nw, t, t, br.cb, br.heads)
		le := dwRef(parts[2], nw, br.hs, br.ws, br.cb, p.lw[bi], p.lb[bi])
		for wi := 0; wi < nw; wi++ {
			for tok := 0; tok < t; tok++ {
				for ch := 0; ch < br.cb; ch++ {
					merged[img(wi, tok)*c+br.c0+ch] = o[(wi*t+tok)*br.cb+ch] + le[(wi*t+tok)*br.cb+ch]
				}
			}
		}
	}
	return linRef(merged, B*n, c, c, p.wp, p.bp)
}

// TestStripeAttention: two branches (vertical then horizontal stripes, as
// the official code orders them) and the single global branch, against
// the float64 definition and its central differences.
func TestStripeAttention(t *testing.T) {
	for i, sh := range []struct{ B, h, w, c, heads, sw int }{
		{1, 4, 4, 8, 2, 2}, {2, 6, 4, 8, 4, 2}, {1, 3, 3, 6, 3, 3}, {2, 4, 6, 12, 2, 1}, {1, 7, 7, 8, 2, 7},
	} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 61))
			s := NewStripeAttention("stage3.0", sh.c, sh.heads, sh.sw, sh.h, sh.w, true)
			c := sh.c
			p := &stripeParams{wqkv: rnd(rng, 3*c*c, 0.4), bqkv: rnd(rng, 3*c, 0.2), wp: rnd(rng, c*c, 0.4), bp: rnd(rng, c, 0.2)}
			set32(s.QKV.Weight, p.wqkv)
			set32(s.QKV.Bias, p.bqkv)
			set32(s.Proj.Weight, p.wp)
			set32(s.Proj.Bias, p.bp)
			for _, l := range s.LePE {
				p.lw = append(p.lw, rnd(rng, l.C*9, 0.3))
				p.lb = append(p.lb, rnd(rng, l.C, 0.2))
				set32(l.Weight, p.lw[len(p.lw)-1])
				set32(l.Bias, p.lb[len(p.lb)-1])
			}
			if nb := len(stripeBranches(c, sh.heads, sh.sw, sh.h, sh.w)); len(s.LePE) != nb {
				t.Fatalf("%d branches, want %d", len(s.LePE), nb)
			}
			x := rnd(rng, sh.B*sh.h*sh.w*c, 1)
			ref := func() []float64 { return stripeRef(x, sh.B, sh.h, sh.w, c, sh.heads, sh.sw, p) }
			y := s.Forward(t32(x, sh.B, sh.h*sh.w, c))
			assertClose(t, "forward", y.Data, ref(), 1e-5, 1e-5)
			R := rnd(rng, len(y.Data), 1)
			dx := s.Backward(t32(R, y.Shape...))
			loss := func() float64 { return dotR(ref(), R) }
			checkGrad(t, "dx", rng, dx.Data, x, loss, 100, 1e-3, 1e-5)
			checkGrad(t, "dqkv.weight", rng, s.QKV.Weight.G.Data, p.wqkv, loss, 60, 1e-3, 1e-5)
			checkGrad(t, "dproj.bias", rng, s.Proj.Bias.G.Data, p.bp, loss, 20, 1e-3, 1e-5)
			for bi, l := range s.LePE {
				checkGrad(t, fmt.Sprintf("dget_v%d.weight", bi), rng, l.Weight.G.Data, p.lw[bi], loss, 40, 1e-3, 1e-5)
				checkGrad(t, fmt.Sprintf("dget_v%d.bias", bi), rng, l.Bias.G.Data, p.lb[bi], loss, 20, 1e-3, 1e-5)
			}
		})
	}
}

func TestStripeAttentionThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	const B, h, w, c, heads, sw = 2, 14, 14, 32, 4, 7
	s := NewStripeAttention("stage3.0", c, heads, sw, h, w, true)
	for _, p := range s.Params() {
		set32(p, rnd(rng, len(p.W.Data), 0.2))
	}
	x := t32(rnd(rng, B*h*w*c, 1), B, h*w, c)
	dy := t32(rnd(rng, B*h*w*c, 1), B, h*w, c)
	threadInvariant(t, func() [][]float32 {
		ZeroGrads(s.Params())
		out := [][]float32{clone32(s.Forward(x).Data), clone32(s.Backward(dy).Data)}
		for _, p := range s.Params() {
			out = append(out, clone32(p.G.Data))
		}
		return out
	})
}

func TestStripeAttentionAllocs(t *testing.T) {
	if attnGemmAllocates() {
		t.Skip("kernels.Gemm allocates per call")
	}
	s := NewStripeAttention("stage3.0", 8, 2, 2, 4, 4, true)
	x := tensor.New(2, 16, 8)
	dy := tensor.New(2, 16, 8)
	run := func() {
		s.Forward(x)
		s.Backward(dy)
	}
	run()
	if n := testing.AllocsPerRun(5, run); n > 0 {
		t.Errorf("StripeAttention forward+backward allocates %.1f times", n)
	}
}

// BenchmarkStripeAttention times CSwin-Tiny's 'S' attention at 224x224,
// batch 1: stage 3 (14x14, C 256, 8 heads, two branches of 7-wide stripes)
// and stage 4 (7x7, C 512, 16 heads, one global branch), forward and
// forward + backward.
//
//	go test -run '^$' -bench StripeAttention ./nn/
func BenchmarkStripeAttention(b *testing.B) {
	for _, st := range []struct{ side, dim, heads, sw int }{{14, 256, 8, 7}, {7, 512, 16, 7}} {
		rng := rand.New(rand.NewPCG(3, 3))
		s := NewStripeAttention("stage", st.dim, st.heads, st.sw, st.side, st.side, true)
		for _, p := range s.Params() {
			set32(p, rnd(rng, len(p.W.Data), 0.02))
		}
		n := st.side * st.side
		x := t32(rnd(rng, n*st.dim, 1), 1, n, st.dim)
		dy := t32(rnd(rng, n*st.dim, 1), 1, n, st.dim)
		name := fmt.Sprintf("%dx%d/C%d/sw%d", st.side, st.side, st.dim, st.sw)
		b.Run(name+"/forward", func(b *testing.B) {
			for b.Loop() {
				s.Forward(x)
			}
		})
		b.Run(name+"/fwdbwd", func(b *testing.B) {
			for b.Loop() {
				s.Forward(x)
				s.Backward(dy)
			}
		})
	}
}
