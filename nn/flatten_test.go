package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/slabml/slab/tensor"
)

// flatParams are a FocusedLinearAttention's parameters in float64.
type flatParams struct {
	wqkv, bqkv, wp, bp, pos, scale, dw, db []float64
}

// flattenRef is focused linear attention in float64 straight from
// docs/method.md 3.4, with the quadratic form of the linear attention
// (Σ_j (q_i·k_j) v_j / (Σ_j q_i·k_j + 1e-6)), an independent check of the
// KᵀV-first order of the layer, and an explicit zero-padded depthwise conv.
func flattenRef(x []float64, p flatParams, B, H, W, C, heads, k, pw int) []float64 {
	N, d := H*W, C/heads
	qkv := linearRef(x, p.wqkv, p.bqkv, B*N, C, 3*C)
	focus := func(v []float64) []float64 {
		out := make([]float64, C)
		n1, np := 0.0, 0.0
		for c := range out {
			s := math.Log1p(math.Exp(p.scale[c]))
			u := (math.Max(v[c], 0) + 1e-6) / s
			out[c] = math.Pow(u, float64(pw))
			n1 += u * u
			np += out[c] * out[c]
		}
		for c := range out {
			out[c] *= math.Sqrt(n1) / math.Sqrt(np)
		}
		return out
	}
	q := make([]float64, B*N*C)
	kk := make([]float64, B*N*C)
	for r := 0; r < B*N; r++ {
		copy(q[r*C:], focus(qkv[r*3*C:r*3*C+C]))
		kp := slices.Clone(qkv[r*3*C+C : r*3*C+2*C])
		for c := range kp {
			kp[c] += p.pos[(r%N)*C+c]
		}
		copy(kk[r*C:], focus(kp))
	}
	v := func(b, i, c int) float64 { return qkv[(b*N+i)*3*C+2*C+c] }
	o := make([]float64, B*N*C)
	for b := 0; b < B; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < N; i++ {
				a := make([]float64, N)
				den := 1e-6
				for j := 0; j < N; j++ {
					for e := 0; e < d; e++ {
						a[j] += q[(b*N+i)*C+h*d+e] * kk[(b*N+j)*C+h*d+e]
					}
					den += a[j]
				}
				y, xx := i/W, i%W
				for e := 0; e < d; e++ {
					s := 0.0
					for j := 0; j < N; j++ {
						s += a[j] * v(b, j, h*d+e)
					}
					conv := p.db[e]
					for ky := 0; ky < k; ky++ {
						for kx := 0; kx < k; kx++ {
							iy, ix := y+ky-k/2, xx+kx-k/2
							if iy >= 0 && iy < H && ix >= 0 && ix < W {
								conv += p.dw[(e*k+ky)*k+kx] * v(b, iy*W+ix, h*d+e)
							}
						}
					}
					o[(b*N+i)*C+h*d+e] = s/den + conv
				}
			}
		}
	}
	return linearRef(o, p.wp, p.bp, B*N, C, C)
}

func newFlattenCase(rng *rand.Rand, C, heads, H, W, k, pw int) (*FocusedLinearAttention, flatParams) {
	f := NewFocusedLinearAttention("blk.attn", C, heads, H, W, k, pw, true)
	p := flatParams{
		wqkv: swRand(rng, 3*C*C, 0, 0.4), bqkv: swRand(rng, 3*C, 0.1, 0.2),
		wp: swRand(rng, C*C, 0, 0.4), bp: swRand(rng, C, 0, 0.2),
		pos: swRand(rng, H*W*C, 0, 0.3), scale: swRand(rng, C, 0, 0.5),
		dw: swRand(rng, len(f.DWCWeight.W.Data), 0, 0.3), db: swRand(rng, len(f.DWCBias.W.Data), 0, 0.2),
	}
	for _, c := range []struct {
		dst *Param
		src []float64
	}{{f.QKV.Weight, p.wqkv}, {f.QKV.Bias, p.bqkv}, {f.Proj.Weight, p.wp}, {f.Proj.Bias, p.bp},
		{f.PosEnc, p.pos}, {f.Scale, p.scale}, {f.DWCWeight, p.dw}, {f.DWCBias, p.db}} {
		copy(c.dst.W.Data, swTensor(c.src, len(c.src)).Data)
	}
	return f, p
}

func TestFocusedLinearAttention(t *testing.T) {
	for i, sh := range []struct{ B, H, W, C, heads, k, p int }{
		{1, 2, 2, 4, 1, 3, 3},
		{2, 3, 4, 6, 2, 3, 3},
		{1, 4, 4, 8, 2, 5, 3},
		{2, 3, 3, 4, 2, 3, 2},
		{4, 7, 7, 8, 2, 5, 3}, // whole-map tasks of the SLA core
	} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 51))
			f, p := newFlattenCase(rng, sh.C, sh.heads, sh.H, sh.W, sh.k, sh.p)
			N := sh.H * sh.W
			x := swRand(rng, sh.B*N*sh.C, 0, 1)
			dyv := swRand(rng, len(x), 0, 1)
			ref := func() []float64 { return flattenRef(x, p, sh.B, sh.H, sh.W, sh.C, sh.heads, sh.k, sh.p) }
			y := f.Forward(swTensor(x, sh.B, N, sh.C))
			assertClose(t, "y", y.Data, ref(), 1e-4, 1e-5)
			dx := f.Backward(swTensor(dyv, sh.B, N, sh.C))
			check := func(name string, got []float32, v []float64) {
				t.Helper()
				m := min(len(v), 40)
				ix := rng.Perm(len(v))[:m]
				g, want := make([]float32, m), make([]float64, m)
				for j, k := range ix {
					g[j] = got[k]
					want[j] = numGrad(func([]float64) float64 { return swDot(ref(), dyv) }, v[k:k+1], 1e-5)[0]
				}
				assertClose(t, name, g, want, 2e-3, 2e-4)
			}
			check("dx", dx.Data, x)
			check("dscale", f.Scale.G.Data, p.scale)
			check("dpositional_encoding", f.PosEnc.G.Data, p.pos)
			check("dqkv.weight", f.QKV.Weight.G.Data, p.wqkv)
			check("dqkv.bias", f.QKV.Bias.G.Data, p.bqkv)
			check("ddwc.weight", f.DWCWeight.G.Data, p.dw)
			check("ddwc.bias", f.DWCBias.G.Data, p.db)
			check("dproj.weight", f.Proj.Weight.G.Data, p.wp)
		})
	}
}

func TestFocusedLinearAttentionParams(t *testing.T) {
	f := NewFocusedLinearAttention("layers.0.blocks.0.attn", 16, 2, 4, 4, 5, 3, true)
	var names []string
	for _, p := range f.Params() {
		names = append(names, fmt.Sprint(p.Name, p.W.Shape))
	}
	want := []string{
		"layers.0.blocks.0.attn.qkv.weight[48 16]", "layers.0.blocks.0.attn.qkv.bias[48]",
		"layers.0.blocks.0.attn.proj.weight[16 16]", "layers.0.blocks.0.attn.proj.bias[16]",
		"layers.0.blocks.0.attn.positional_encoding[1 16 16]", "layers.0.blocks.0.attn.scale[1 1 16]",
		"layers.0.blocks.0.attn.dwc.weight[8 1 5 5]", "layers.0.blocks.0.attn.dwc.bias[8]",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("params %v, want %v", names, want)
	}
}

// TestFocusedLinearAttentionThreadInvariant checks the output and every
// gradient for the same bits on 1 and 2 threads.
func TestFocusedLinearAttentionThreadInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	f, _ := newFlattenCase(rng, 16, 2, 7, 7, 5, 3)
	x := swTensor(swRand(rng, 3*49*16, 0, 1), 3, 49, 16)
	dy := swTensor(swRand(rng, 3*49*16, 0, 1), 3, 49, 16)
	var runs [][]float32
	for _, th := range []int{1, 2} {
		swWithThreads(th, func() {
			ZeroGrads(f.Params())
			r := slices.Clone(f.Forward(x).Data)
			r = append(r, f.Backward(dy).Data...)
			for _, p := range f.Params() {
				r = append(r, p.G.Data...)
			}
			runs = append(runs, r)
		})
	}
	if !slices.Equal(runs[0], runs[1]) {
		t.Fatal("focused linear attention output or gradients differ between 1 and 2 threads")
	}
}

func TestFocusedLinearAttentionAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	f, _ := newFlattenCase(rng, 16, 2, 7, 7, 5, 3)
	x := swTensor(swRand(rng, 2*49*16, 0, 1), 2, 49, 16)
	dy := tensor.New(2, 49, 16)
	f.Backward(f.Forward(x).Clone())
	n := testing.AllocsPerRun(5, func() {
		f.Forward(x)
		f.Backward(dy)
	})
	t.Logf("FocusedLinearAttention forward+backward: %.1f allocs/run", n)
	if n > 0 {
		t.Errorf("FocusedLinearAttention steady state allocates %.1f times", n)
	}
}

// BenchmarkFocusedLinearAttention times focused linear attention against
// SLA at Swin-T stage 1's shape (one 56x56 map, dim 96, 3 heads of 32, 5x5
// DWC, batch 1), forward only, interleaved round by round in one run: the
// ratio is FLatten's cost over SLAB's for the same attention layout (the
// focusing passes on top of the shared linear-attention core).
func BenchmarkFocusedLinearAttention(b *testing.B) {
	const dim, heads, side = 96, 3, 56
	rng := rand.New(rand.NewPCG(8, 8))
	x := swTensor(swRand(rng, side*side*dim, 0, 1), 1, side*side, dim)
	fl := NewFocusedLinearAttention("attn", dim, heads, side, side, 5, 3, true)
	sla := NewSLA("attn", dim, heads, side, side, 5, true)
	benchFillSwin(fl)
	benchFillSwin(sla)
	b.Run("fwd", func(b *testing.B) {
		for b.Loop() {
			fl.Forward(x)
		}
	})
	b.Run("fwdbwd", func(b *testing.B) {
		dy := fl.Forward(x).Clone()
		for b.Loop() {
			fl.Forward(x)
			fl.Backward(dy)
		}
	})
	b.Run("ratio", func(b *testing.B) {
		var tf, ts, r []float64
		fl.Forward(x)
		sla.Forward(x)
		for b.Loop() {
			t0 := time.Now()
			sla.Forward(x)
			t1 := time.Now()
			fl.Forward(x)
			t2 := time.Now()
			ts = append(ts, t1.Sub(t0).Seconds())
			tf = append(tf, t2.Sub(t1).Seconds())
			r = append(r, t2.Sub(t1).Seconds()/t1.Sub(t0).Seconds())
		}
		slices.Sort(ts)
		slices.Sort(tf)
		slices.Sort(r)
		b.ReportMetric(ts[len(ts)/2]*1e3, "sla-ms")
		b.ReportMetric(tf[len(tf)/2]*1e3, "flatten-ms")
		b.ReportMetric(r[len(r)/2], "flatten/sla")
	})
}
