package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// sraParams are an SRA's parameters in float64.
type sraParams struct{ wq, bq, wkv, bkv, wp, bp, wsr, bsr []float64 }

// sraRef is spatial-reduction attention from its equations with an
// identity norm (the norm is the model's and tested on its own).
func sraRef(x []float64, B, h, w, c, heads, sr int, p *sraParams) []float64 {
	n := h * w
	q := linRef(x, B*n, c, c, p.wq, p.bq)
	r, m := x, n
	if sr > 1 {
		r = convRef(tokensToImages(x, B, h, w, c), B, c, h, w, c, sr, sr, 0, p.wsr, p.bsr)
		m = (h / sr) * (w / sr)
	}
	kv := linRef(r, B*m, c, 2*c, p.wkv, p.bkv)
	k, v := make([]float64, B*m*c), make([]float64, B*m*c)
	for i := 0; i < B*m; i++ {
		copy(k[i*c:(i+1)*c], kv[i*2*c:])
		copy(v[i*c:(i+1)*c], kv[i*2*c+c:])
	}
	return linRef(attnRef(q, k, v, B, n, m, c, heads), B*n, c, c, p.wp, p.bp)
}

func newSRATest(rng *rand.Rand, c, heads, sr int) (*SRA, *sraParams) {
	s := NewSRA("attn", c, heads, sr, true, Identity{})
	p := &sraParams{
		wq: rnd(rng, c*c, 0.4), bq: rnd(rng, c, 0.2), wkv: rnd(rng, 2*c*c, 0.4), bkv: rnd(rng, 2*c, 0.2),
		wp: rnd(rng, c*c, 0.4), bp: rnd(rng, c, 0.2),
	}
	set32(s.Q.Weight, p.wq)
	set32(s.Q.Bias, p.bq)
	set32(s.KV.Weight, p.wkv)
	set32(s.KV.Bias, p.bkv)
	set32(s.Proj.Weight, p.wp)
	set32(s.Proj.Bias, p.bp)
	if sr > 1 {
		p.wsr, p.bsr = rnd(rng, c*c*sr*sr, 0.3), rnd(rng, c, 0.2)
		set32(s.SR.Weight, p.wsr)
		set32(s.SR.Bias, p.bsr)
	}
	return s, p
}

// TestSRA: forward, dx and every parameter gradient against the float64
// equations and their central differences, with reduction ratios 1, 2, 4.
func TestSRA(t *testing.T) {
	for i, sh := range []struct{ B, h, w, c, heads, sr int }{
		{1, 4, 4, 4, 1, 1}, {2, 4, 6, 8, 2, 2}, {1, 8, 8, 6, 3, 4}, {2, 6, 4, 8, 1, 2},
	} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 51))
			s, p := newSRATest(rng, sh.c, sh.heads, sh.sr)
			x := rnd(rng, sh.B*sh.h*sh.w*sh.c, 1)
			ref := func() []float64 { return sraRef(x, sh.B, sh.h, sh.w, sh.c, sh.heads, sh.sr, p) }
			y := s.Forward(t32(x, sh.B, sh.h*sh.w, sh.c), sh.h, sh.w, Train)
			assertClose(t, "forward", y.Data, ref(), 1e-5, 1e-5)
			R := rnd(rng, len(y.Data), 1)
			dx := s.Backward(t32(R, y.Shape...))
			loss := func() float64 { return dotR(ref(), R) }
			checkGrad(t, "dx", rng, dx.Data, x, loss, 100, 1e-3, 1e-5)
			for _, g := range []struct {
				name string
				p    *Param
				x    []float64
			}{{"dq.weight", s.Q.Weight, p.wq}, {"dkv.weight", s.KV.Weight, p.wkv}, {"dkv.bias", s.KV.Bias, p.bkv}, {"dproj.weight", s.Proj.Weight, p.wp}} {
				checkGrad(t, g.name, rng, g.p.G.Data, g.x, loss, 40, 1e-3, 1e-5)
			}
			if sh.sr > 1 {
				checkGrad(t, "dsr.weight", rng, s.SR.Weight.G.Data, p.wsr, loss, 60, 1e-3, 1e-5)
				checkGrad(t, "dsr.bias", rng, s.SR.Bias.G.Data, p.bsr, loss, 20, 1e-3, 1e-5)
			}
			want := []string{"attn.q.weight", "attn.q.bias", "attn.kv.weight", "attn.kv.bias", "attn.proj.weight", "attn.proj.bias"}
			if sh.sr > 1 {
				want = append(want, "attn.sr.weight", "attn.sr.bias")
			}
			var got []string
			for _, p := range s.Params() {
				got = append(got, p.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Params %v, want %v", got, want)
			}
		})
	}
}

func TestSRAThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const B, h, w, c, heads, sr = 2, 16, 16, 32, 2, 4
	s := NewSRA("attn", c, heads, sr, true, NewLayerNorm("attn.norm", c, 1e-6))
	for _, p := range s.Params() {
		set32(p, rnd(rng, len(p.W.Data), 0.2))
	}
	x := t32(rnd(rng, B*h*w*c, 1), B, h*w, c)
	dy := t32(rnd(rng, B*h*w*c, 1), B, h*w, c)
	threadInvariant(t, func() [][]float32 {
		ZeroGrads(s.Params())
		out := [][]float32{clone32(s.Forward(x, h, w, Train).Data), clone32(s.Backward(dy).Data)}
		for _, p := range s.Params() {
			out = append(out, clone32(p.G.Data))
		}
		return out
	})
}

func TestSRAAllocs(t *testing.T) {
	if attnGemmAllocates() {
		t.Skip("kernels.Gemm allocates per call")
	}
	s := NewSRA("attn", 8, 2, 2, true, NewLayerNorm("attn.norm", 8, 1e-6))
	x := tensor.New(2, 36, 8)
	dy := tensor.New(2, 36, 8)
	run := func() {
		s.Forward(x, 6, 6, Train)
		s.Backward(dy)
	}
	run()
	if n := testing.AllocsPerRun(5, run); n > 0 {
		t.Errorf("SRA forward+backward allocates %.1f times", n)
	}
}

// BenchmarkSRA times spatial-reduction attention (q, kv, sr conv + norm,
// attention, proj) at PVT-Tiny's four stages, 224x224, batch 1: forward
// (inference) and forward + backward.
//
//	go test -run '^$' -bench SRA ./nn/
func BenchmarkSRA(b *testing.B) {
	for _, st := range []struct{ side, dim, heads, sr int }{{56, 64, 1, 8}, {28, 128, 2, 4}, {14, 320, 5, 2}, {7, 512, 8, 1}} {
		rng := rand.New(rand.NewPCG(3, 3))
		s := NewSRA("attn", st.dim, st.heads, st.sr, true, NewLayerNorm("attn.norm", st.dim, 1e-6))
		for _, p := range s.Params() {
			set32(p, rnd(rng, len(p.W.Data), 0.02))
		}
		n := st.side * st.side
		x := t32(rnd(rng, n*st.dim, 1), 1, n, st.dim)
		dy := t32(rnd(rng, n*st.dim, 1), 1, n, st.dim)
		name := fmt.Sprintf("%dx%d/C%d/sr%d", st.side, st.side, st.dim, st.sr)
		b.Run(name+"/forward", func(b *testing.B) {
			for b.Loop() {
				s.Forward(x, st.side, st.side, Eval)
			}
		})
		b.Run(name+"/fwdbwd", func(b *testing.B) {
			for b.Loop() {
				s.Forward(x, st.side, st.side, Train)
				s.Backward(dy)
			}
		})
	}
}
