package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// attnCoreRef is softmax attention from qkv [B,N,3C] to merged heads
// [B,N,C] in float64, straight from the definition.
func attnCoreRef(B, N, C, H int, qkv []float64) []float64 {
	d := C / H
	scale := 1 / math.Sqrt(float64(d))
	out := make([]float64, B*N*C)
	row := make([]float64, N)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			at := func(i, part, a int) float64 { return qkv[(b*N+i)*3*C+part*C+h*d+a] }
			for i := 0; i < N; i++ {
				m := math.Inf(-1)
				for j := 0; j < N; j++ {
					s := 0.0
					for a := 0; a < d; a++ {
						s += at(i, 0, a) * at(j, 1, a)
					}
					row[j] = s * scale
					m = math.Max(m, row[j])
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
					out[(b*N+i)*C+h*d+e] = s
				}
			}
		}
	}
	return out
}

var attnShapes = []struct{ B, N, C, H int }{
	{1, 1, 4, 2}, {2, 3, 6, 3}, {1, 17, 8, 2}, {2, 49, 6, 1}, {1, 197, 12, 3},
	{8, 23, 8, 2}, // 16 pairs: whole-sequence forward tasks
}

func TestAttentionCore(t *testing.T) {
	for i, sh := range attnShapes {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			a := NewAttention("blk.attn", sh.C, sh.H, true)
			qkv := attnRound(attnRand(rng, sh.B*sh.N*3*sh.C, 0, 1.5))
			R := attnRound(attnRand(rng, sh.B*sh.N*sh.C, 0, 1))
			x := tensor.New(sh.B, sh.N, 3*sh.C)
			attnTo32(x.Data, qkv)
			got := a.forwardCore(x)
			assertClose(t, "forward", got.Data, attnCoreRef(sh.B, sh.N, sh.C, sh.H, qkv), 1e-4, 1e-5)
			dout := tensor.New(sh.B, sh.N, sh.C)
			attnTo32(dout.Data, R)
			dqkv := a.backwardCore(dout)
			idx := rng.Perm(len(qkv))
			if len(idx) > 150 {
				idx = idx[:150]
			}
			gs := make([]float32, len(idx))
			want := make([]float64, len(idx))
			for j, ix := range idx {
				gs[j] = dqkv.Data[ix]
				want[j] = numGrad(func([]float64) float64 {
					o := attnCoreRef(sh.B, sh.N, sh.C, sh.H, qkv)
					l := 0.0
					for k := range o {
						l += o[k] * R[k]
					}
					return l
				}, qkv[ix:ix+1], 1e-6)[0]
			}
			assertClose(t, "dqkv", gs, want, 2e-3, 2e-5)
		})
	}
}

func TestAttentionCoreAllocs(t *testing.T) {
	for _, th := range []int{1, 2} {
		attnWithThreads(th, func() { testAttentionCoreAllocs(t) })
	}
}

func testAttentionCoreAllocs(t *testing.T) {
	if attnGemmAllocates() {
		t.Skip("kernels.Gemm allocates per call; Attention's own allocations cannot be isolated")
	}
	a := NewAttention("blk.attn", 8, 2, true)
	x := tensor.New(2, 17, 24)
	for i := range x.Data {
		x.Data[i] = float32(i%11) * 0.1
	}
	dout := tensor.New(2, 17, 8)
	a.forwardCore(x)
	a.backwardCore(dout)
	n := testing.AllocsPerRun(5, func() {
		a.forwardCore(x)
		a.backwardCore(dout)
	})
	t.Logf("Attention core forward+backward: %.1f allocs/run (threads %d)", n, kernels.Threads())
	if n > 0 {
		t.Errorf("Attention core steady state allocates %.1f times", n)
	}
}

// benchFill sets every parameter of m to small deterministic values, so
// that the ReLUs and softmax see realistic, non-degenerate inputs.
func benchFill(m Module) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, p := range m.Params() {
		for i := range p.W.Data {
			p.W.Data[i] = float32(rng.NormFloat64() * 0.02)
		}
	}
}

// BenchmarkAttentionBlock times one attention module (qkv Linear,
// attention, proj Linear) forward, inference only, at dim 192 with 3 heads
// (DeiT-Tiny width) on one image of N = 196, 784, 3136 tokens (square maps
// 14², 28², 56²; SLA with its 5x5 depthwise conv). The SLA/softmax time
// ratio is the figure docs/peers.md quotes for PyTorch. fwdbwd/ adds a backward.
func BenchmarkAttentionBlock(b *testing.B) {
	const dim, heads = 192, 3
	for _, g := range []int{14, 28, 56} {
		n := g * g
		x := tensor.New(1, n, dim)
		rng := rand.New(rand.NewPCG(2, 2))
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64())
		}
		soft := NewAttention("attn", dim, heads, true)
		sla := NewSLA("attn", dim, heads, g, g, 5, true)
		benchFill(soft)
		benchFill(sla)
		type layer struct {
			name string
			fwd  func(*tensor.Tensor) *tensor.Tensor
			bwd  func(*tensor.Tensor) *tensor.Tensor
		}
		for _, l := range []layer{{"softmax", soft.Forward, soft.Backward}, {"sla", sla.Forward, sla.Backward}} {
			b.Run(fmt.Sprintf("%s/%d", l.name, n), func(b *testing.B) {
				for b.Loop() {
					l.fwd(x)
				}
			})
		}
		// ratio/ interleaves the two layers round by round (docs/peers.md: on a
		// shared machine only ratios taken inside one run are comparable)
		// and reports the median per-round time of each and the median of
		// the per-round SLA/softmax ratios.
		b.Run(fmt.Sprintf("ratio/%d", n), func(b *testing.B) {
			soft.Forward(x)
			sla.Forward(x)
			var ts, tl, r []float64
			for b.Loop() {
				t0 := time.Now()
				soft.Forward(x)
				t1 := time.Now()
				sla.Forward(x)
				t2 := time.Now()
				ts = append(ts, t1.Sub(t0).Seconds())
				tl = append(tl, t2.Sub(t1).Seconds())
				r = append(r, t2.Sub(t1).Seconds()/t1.Sub(t0).Seconds())
			}
			b.ReportMetric(median(ts)*1e3, "softmax-ms")
			b.ReportMetric(median(tl)*1e3, "sla-ms")
			b.ReportMetric(median(r), "sla/softmax")
		})
		for _, l := range []layer{{"softmax", soft.Forward, soft.Backward}, {"sla", sla.Forward, sla.Backward}} {
			if testing.Short() {
				break
			}
			b.Run(fmt.Sprintf("fwdbwd/%s/%d", l.name, n), func(b *testing.B) {
				dy := l.fwd(x).Clone()
				for b.Loop() {
					l.fwd(x)
					l.bwd(dy)
				}
			})
		}
	}
}

// slaFLOPs counts one SLA module forward (qkv, attention, DWC, proj) on n
// tokens of width c, h heads, a k x k depthwise conv, a multiply-add
// counted as 2: the Linears 2n·c·3c + 2n·c², KᵀV and Q·S 2n·c·d each,
// the normaliser Q·ksum 2n·c, the conv 2n·c·k². ReLUs, the positional
// encoding and biases are left out (memory-bound, a few n·c each).
func slaFLOPs(n, c, h, k int) float64 {
	d := c / h
	return 2 * float64(n) * float64(c) * float64(3*c+c+2*d+1+k*k)
}

// BenchmarkSLABlock times the SLA module forward (inference) at the two
// shapes Swin's global-SLA stage 1 and BenchmarkAttentionBlock use: 56x56
// tokens, 3 heads, dim 192 (heads of 64, the DeiT-Tiny width) and dim 96
// (Swin-T's stage 1, heads of 32). It reports the rate against the FMA
// peak measured in the same process (kernels.PeakGFLOPS, before and after
// the timed loop; the better of the two), so that clock and load changes
// between runs cancel: %peak is the fraction of the FLOP bound reached.
func BenchmarkSLABlock(b *testing.B) {
	// Follow -test.cpu: kernels read GOMAXPROCS once, at start-up.
	defer kernels.SetThreads(kernels.Threads())
	kernels.SetThreads(runtime.GOMAXPROCS(0))
	for _, dim := range []int{192, 96} {
		const heads, g = 3, 56
		n := g * g
		x := tensor.New(1, n, dim)
		rng := rand.New(rand.NewPCG(2, 2))
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64())
		}
		sla := NewSLA("attn", dim, heads, g, g, 5, true)
		benchFill(sla)
		Prepack(sla)
		b.Run(fmt.Sprintf("dim=%d/%d", dim, n), func(b *testing.B) {
			sla.Forward(x)
			peak, _ := kernels.PeakGFLOPS(5)
			var ts []float64
			for b.Loop() {
				t0 := time.Now()
				sla.Forward(x)
				ts = append(ts, time.Since(t0).Seconds())
			}
			p2, _ := kernels.PeakGFLOPS(5)
			peak = max(peak, p2)
			med := median(ts)
			gf := slaFLOPs(n, dim, heads, 5) / med / 1e9
			b.ReportMetric(med*1e3, "median-ms")
			b.ReportMetric(gf, "GFLOP/s")
			if peak > 0 {
				b.ReportMetric(peak, "peakGFLOP/s")
				b.ReportMetric(100*gf/peak, "%peak")
			}
		})
	}
}

// median returns the median of xs (sorted in place).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// TestAttentionEvalProbs: with prepacked weights (evaluation) the forward
// forms probabilities in shared scratch rows and keeps none; its output
// has the bits of the training-mode forward, for row-block tasks (few
// image-head pairs) and whole-sequence tasks alike, on one and two
// threads, and a Backward after it refuses clearly.
func TestAttentionEvalProbs(t *testing.T) {
	defer kernels.SetThreads(kernels.Threads())
	rng := rand.New(rand.NewPCG(8, 8))
	for _, b := range []int{1, 9} { // 2 and 18 (image, head) pairs
		a := NewAttention("blk.attn", 32, 2, true)
		for _, p := range a.Params() {
			for i := range p.W.Data {
				p.W.Data[i] = float32(rng.NormFloat64() * 0.2)
			}
		}
		x := tensor.New(b, 101, 32)
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64())
		}
		want := a.Forward(x).Clone()
		if a.noProbs || a.att == nil {
			t.Fatalf("batch %d: a training-mode forward kept no probabilities", b)
		}
		Prepack(a)
		for _, th := range []int{1, 2} {
			kernels.SetThreads(th)
			got := a.Forward(x)
			if !a.noProbs {
				t.Fatalf("batch %d: prepacked forward kept its probabilities", b)
			}
			for i := range got.Data {
				if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
					t.Fatalf("batch %d threads %d: element %d: %g, training-mode forward %g", b, th, i, got.Data[i], want.Data[i])
				}
			}
		}
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), "evaluation forward") {
					t.Errorf("batch %d: Backward after an evaluation forward: %v", b, r)
				}
			}()
			a.Backward(tensor.New(b, 101, 32))
		}()
	}
}
