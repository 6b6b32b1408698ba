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

// winAttnParams are a WindowAttention's parameters in float64.
type winAttnParams struct {
	wqkv, bqkv, wp, bp, table []float64
}

// linearRef is y = x Wᵀ + b for rows x [rows, in], W [out, in].
func linearRef(x, w, b []float64, rows, in, out int) []float64 {
	y := make([]float64, rows*out)
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[o*in+i]
			}
			y[r*out+o] = s
		}
	}
	return y
}

// winAttnRef is window attention in float64 from the definition: per
// window b and head h, softmax(d^-0.5 Q Kᵀ + table[index] + mask[b mod
// nW]) V, heads merged, proj.
func winAttnRef(x []float64, p winAttnParams, idx []int32, mask []float64, Bp, N, C, H int) []float64 {
	d := C / H
	qkv := linearRef(x, p.wqkv, p.bqkv, Bp*N, C, 3*C)
	o := make([]float64, Bp*N*C)
	row := make([]float64, N)
	for b := 0; b < Bp; b++ {
		for h := 0; h < H; h++ {
			at := func(i, part, a int) float64 { return qkv[(b*N+i)*3*C+part*C+h*d+a] }
			for i := 0; i < N; i++ {
				m := math.Inf(-1)
				for j := 0; j < N; j++ {
					s := 0.0
					for a := 0; a < d; a++ {
						s += at(i, 0, a) * at(j, 1, a)
					}
					s = s/math.Sqrt(float64(d)) + p.table[int(idx[i*N+j])*H+h]
					if mask != nil {
						nw := len(mask) / (N * N)
						s += mask[((b%nw)*N+i)*N+j]
					}
					row[j] = s
					m = math.Max(m, s)
				}
				sum := 0.0
				for j := range row {
					row[j] = math.Exp(row[j] - m)
					sum += row[j]
				}
				for e := 0; e < d; e++ {
					s := 0.0
					for j := 0; j < N; j++ {
						s += row[j] / sum * at(j, 2, e)
					}
					o[(b*N+i)*C+h*d+e] = s
				}
			}
		}
	}
	return linearRef(o, p.wp, p.bp, Bp*N, C, C)
}

// newWinAttnCase builds a WindowAttention with random parameters (the
// table at std 1, so the bias visibly moves the softmax).
func newWinAttnCase(rng *rand.Rand, C, H, w int) (*WindowAttention, winAttnParams) {
	a := NewWindowAttention("blk.attn", C, H, w, true)
	p := winAttnParams{
		wqkv: swRand(rng, 3*C*C, 0, 0.4), bqkv: swRand(rng, 3*C, 0, 0.2),
		wp: swRand(rng, C*C, 0, 0.4), bp: swRand(rng, C, 0, 0.2),
		table: swRand(rng, len(a.RelPos.Table.W.Data), 0, 1),
	}
	for _, c := range []struct {
		dst *Param
		src []float64
	}{{a.QKV.Weight, p.wqkv}, {a.QKV.Bias, p.bqkv}, {a.Proj.Weight, p.wp}, {a.Proj.Bias, p.bp}, {a.RelPos.Table, p.table}} {
		copy(c.dst.W.Data, swTensor(c.src, len(c.src)).Data)
	}
	return a, p
}

var winAttnShapes = []struct{ B, H, W, ws, s, C, heads int }{
	{1, 2, 2, 2, 0, 4, 1},
	{2, 4, 4, 2, 1, 6, 2},
	{1, 8, 8, 4, 2, 8, 2},
	{2, 6, 6, 3, 1, 6, 3},
	{1, 7, 7, 7, 0, 8, 2}, // one window: attention over the whole map
	{4, 8, 8, 4, 2, 8, 2}, // 32 (window, head) pairs: whole-sequence forward tasks
}

func TestWindowAttention(t *testing.T) {
	for i, sh := range winAttnShapes {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 31))
			a, p := newWinAttnCase(rng, sh.C, sh.heads, sh.ws)
			mt := ShiftMask(sh.H, sh.W, sh.ws, sh.s)
			var mask []float64
			if mt != nil {
				mask = float64s(mt.Data)
			}
			nw := sh.H * sh.W / (sh.ws * sh.ws)
			Bp, N, C := sh.B*nw, sh.ws*sh.ws, sh.C
			x := swRand(rng, Bp*N*C, 0, 1)
			dyv := swRand(rng, Bp*N*C, 0, 1)
			y := a.Forward(swTensor(x, Bp, N, C), mt)
			assertClose(t, "y", y.Data, winAttnRef(x, p, a.RelPos.Index, mask, Bp, N, C, sh.heads), 1e-4, 1e-5)
			dx := a.Backward(swTensor(dyv, Bp, N, C))
			loss := func() float64 { return swDot(winAttnRef(x, p, a.RelPos.Index, mask, Bp, N, C, sh.heads), dyv) }
			check := func(name string, got []float32, v []float64) {
				t.Helper()
				m := min(len(v), 60)
				ix := rng.Perm(len(v))[:m]
				g, want := make([]float32, m), make([]float64, m)
				for j, k := range ix {
					g[j] = got[k]
					want[j] = numGrad(func([]float64) float64 { return loss() }, v[k:k+1], 1e-5)[0]
				}
				assertClose(t, name, g, want, 2e-3, 2e-4)
			}
			check("dx", dx.Data, x)
			check("dtable", a.RelPos.Table.G.Data, p.table)
			check("dqkv.weight", a.QKV.Weight.G.Data, p.wqkv)
			check("dqkv.bias", a.QKV.Bias.G.Data, p.bqkv)
			check("dproj.weight", a.Proj.Weight.G.Data, p.wp)
		})
	}
}

// TestWindowAttentionThreadInvariant checks that every gradient has the
// same bits on 1 and 2 threads (the bias table is a scatter-add over
// windows), with the shifted mask on.
func TestWindowAttentionThreadInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	a, _ := newWinAttnCase(rng, 8, 2, 4)
	mask := ShiftMask(8, 8, 4, 2)
	x := swTensor(swRand(rng, 12*16*8, 0, 1), 12, 16, 8)
	dy := swTensor(swRand(rng, 12*16*8, 0, 1), 12, 16, 8)
	var runs [][]float32
	for _, th := range []int{1, 2} {
		swWithThreads(th, func() {
			ZeroGrads(a.Params())
			y := slices.Clone(a.Forward(x, mask).Data)
			dx := a.Backward(dy)
			r := append(y, dx.Data...)
			for _, p := range a.Params() {
				r = append(r, p.G.Data...)
			}
			runs = append(runs, r)
		})
	}
	if !slices.Equal(runs[0], runs[1]) {
		t.Fatal("window attention output or gradients differ between 1 and 2 threads")
	}
}

func TestWindowAttentionAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	a, _ := newWinAttnCase(rng, 8, 2, 4)
	mask := ShiftMask(8, 8, 4, 2)
	x := swTensor(swRand(rng, 8*16*8, 0, 1), 8, 16, 8)
	a.Forward(x, mask)
	n := testing.AllocsPerRun(5, func() { a.Forward(x, mask) })
	t.Logf("WindowAttention forward: %.1f allocs/run", n)
	if n > 0 {
		t.Errorf("WindowAttention steady-state forward allocates %.1f times", n)
	}
}

// BenchmarkWindowAttention times window attention at Swin-T stage 3's
// shape: one 14x14 map of dim 384 (12 heads of 32) in four 7x7 windows,
// forward alone and forward+backward, unshifted and shifted (mask on), and
// beside it plain nn.Attention on the same four windows (no bias, no
// mask), interleaved round by round, so that the cost of the bias and mask
// shows as a ratio taken inside one run.
func BenchmarkWindowAttention(b *testing.B) {
	const dim, heads, side, ws = 384, 12, 14, 7
	rng := rand.New(rand.NewPCG(4, 4))
	nw := (side / ws) * (side / ws)
	x := swTensor(swRand(rng, nw*ws*ws*dim, 0, 1), nw, ws*ws, dim)
	wa := NewWindowAttention("attn", dim, heads, ws, true)
	plain := NewAttention("attn", dim, heads, true)
	benchFillSwin(wa)
	benchFillSwin(plain)
	mask := ShiftMask(side, side, ws, ws/2)
	for _, m := range []struct {
		name string
		mask *tensor.Tensor
	}{{"noshift", nil}, {"shift", mask}} {
		b.Run("fwd/"+m.name, func(b *testing.B) {
			for b.Loop() {
				wa.Forward(x, m.mask)
			}
		})
		b.Run("fwdbwd/"+m.name, func(b *testing.B) {
			dy := wa.Forward(x, m.mask).Clone()
			for b.Loop() {
				wa.Forward(x, m.mask)
				wa.Backward(dy)
			}
		})
	}
	// ratio/ interleaves plain attention and window attention (shifted:
	// bias and mask) round by round and reports medians and the median
	// per-round ratio; fwdbwd/ adds the backward (the bias gradient's copy
	// of the logit gradients and its sum over windows).
	for _, bwd := range []bool{false, true} {
		name := "ratio/fwd"
		if bwd {
			name = "ratio/fwdbwd"
		}
		b.Run(name, func(b *testing.B) {
			var tw, tp, r []float64
			dy := wa.Forward(x, mask).Clone()
			plain.Forward(x)
			for b.Loop() {
				t0 := time.Now()
				plain.Forward(x)
				if bwd {
					plain.Backward(dy)
				}
				t1 := time.Now()
				wa.Forward(x, mask)
				if bwd {
					wa.Backward(dy)
				}
				t2 := time.Now()
				tp = append(tp, t1.Sub(t0).Seconds())
				tw = append(tw, t2.Sub(t1).Seconds())
				r = append(r, t2.Sub(t1).Seconds()/t1.Sub(t0).Seconds())
			}
			slices.Sort(tp)
			slices.Sort(tw)
			slices.Sort(r)
			b.ReportMetric(tp[len(tp)/2]*1e3, "plain-ms")
			b.ReportMetric(tw[len(tw)/2]*1e3, "window-ms")
			b.ReportMetric(r[len(r)/2], "window/plain")
		})
	}
}

// benchFillSwin sets every parameter to small deterministic values.
func benchFillSwin(m Module) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, p := range m.Params() {
		for i := range p.W.Data {
			p.W.Data[i] = float32(rng.NormFloat64() * 0.02)
		}
	}
}
