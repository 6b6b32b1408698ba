package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// slaShape is one SLA test configuration: B images of an H x W token map,
// C channels in h heads, depthwise kernel k.
type slaShape struct{ B, H, W, C, h, k int }

// slaCoreRef evaluates the SLA core (qkv -> merged-head output, before
// proj) in float64 straight from docs/method.md 3.1, contracting KᵀV first.
func slaCoreRef(sh slaShape, qkv, pos, dw, db []float64) []float64 {
	N, C, d := sh.H*sh.W, sh.C, sh.C/sh.h
	p := sh.k / 2
	out := make([]float64, sh.B*N*C)
	for b := 0; b < sh.B; b++ {
		for h := 0; h < sh.h; h++ {
			q := func(i, a int) float64 { return math.Max(qkv[(b*N+i)*3*C+h*d+a], 0) }
			k := func(i, a int) float64 { return math.Max(qkv[(b*N+i)*3*C+C+h*d+a]+pos[i*C+h*d+a], 0) }
			v := func(i, a int) float64 { return qkv[(b*N+i)*3*C+2*C+h*d+a] }
			S := make([]float64, d*d)
			ks := make([]float64, d)
			for j := 0; j < N; j++ {
				for a := 0; a < d; a++ {
					ks[a] += k(j, a)
					for e := 0; e < d; e++ {
						S[a*d+e] += k(j, a) * v(j, e)
					}
				}
			}
			for i := 0; i < N; i++ {
				den := 1e-6
				for a := 0; a < d; a++ {
					den += q(i, a) * ks[a]
				}
				y, x := i/sh.W, i%sh.W
				for e := 0; e < d; e++ {
					num := 0.0
					for a := 0; a < d; a++ {
						num += q(i, a) * S[a*d+e]
					}
					conv := db[e]
					for ky := 0; ky < sh.k; ky++ {
						for kx := 0; kx < sh.k; kx++ {
							iy, ix := y+ky-p, x+kx-p
							if iy < 0 || iy >= sh.H || ix < 0 || ix >= sh.W {
								continue
							}
							conv += dw[(e*sh.k+ky)*sh.k+kx] * v(iy*sh.W+ix, e)
						}
					}
					out[(b*N+i)*C+h*d+e] = num/den + conv
				}
			}
		}
	}
	return out
}

// slaCoreNaive evaluates the same output the quadratic way: the N x N
// matrix A = ReLU(Q)ReLU(K)ᵀ, O = A V / (rowsum A + 1e-6) + DWC(V). An
// independent check of the KᵀV-first reordering.
func slaCoreNaive(sh slaShape, qkv, pos, dw, db []float64) []float64 {
	N, C, d := sh.H*sh.W, sh.C, sh.C/sh.h
	zeroV := append([]float64(nil), qkv...)
	// DWC part: the reference with Q = 0, where the attention term
	// vanishes; the quadratic attention term is added below.
	for b := 0; b < sh.B; b++ {
		for i := 0; i < N; i++ {
			for a := 0; a < C; a++ {
				zeroV[(b*N+i)*3*C+a] = 0
			}
		}
	}
	out := slaCoreRef(sh, zeroV, pos, dw, db)
	for b := 0; b < sh.B; b++ {
		for h := 0; h < sh.h; h++ {
			A := make([]float64, N*N)
			for i := 0; i < N; i++ {
				for j := 0; j < N; j++ {
					s := 0.0
					for a := 0; a < d; a++ {
						qi := math.Max(qkv[(b*N+i)*3*C+h*d+a], 0)
						kj := math.Max(qkv[(b*N+j)*3*C+C+h*d+a]+pos[j*C+h*d+a], 0)
						s += qi * kj
					}
					A[i*N+j] = s
				}
			}
			for i := 0; i < N; i++ {
				rs := 1e-6
				for j := 0; j < N; j++ {
					rs += A[i*N+j]
				}
				for e := 0; e < d; e++ {
					s := 0.0
					for j := 0; j < N; j++ {
						s += A[i*N+j] * qkv[(b*N+j)*3*C+2*C+h*d+e]
					}
					out[(b*N+i)*C+h*d+e] += s / rs
				}
			}
		}
	}
	return out
}

func attnRand(rng *rand.Rand, n int, mean, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = mean + std*rng.NormFloat64()
	}
	return x
}

func attnTo32(dst []float32, src []float64) {
	for i, v := range src {
		dst[i] = float32(v)
	}
}

// attnRound returns src attnRound to float32 and back, so that the float64
// reference sees exactly the values the float32 layer sees.
func attnRound(src []float64) []float64 {
	x := make([]float64, len(src))
	for i, v := range src {
		x[i] = float64(float32(v))
	}
	return x
}

var slaShapes = []slaShape{
	{1, 1, 1, 4, 2, 3},
	{2, 3, 3, 6, 3, 5},
	{1, 7, 7, 8, 2, 3},
	{2, 1, 17, 4, 1, 5},
	{1, 14, 14, 12, 3, 5},
	{1, 4, 5, 6, 2, 7},
	{1, 3, 4, 40, 2, 5}, // d = 20: one full 16-lane group and a tail
	{2, 2, 3, 64, 2, 3}, // d = 32: whole groups only
	// Enough images and heads for tasks of several map rows: whole 7x7 maps
	// (49-token products), and blocks of 12 rows plus a 1-row rest.
	{8, 7, 7, 8, 2, 5},
	{4, 13, 4, 8, 2, 3},
}

// forKernelPaths runs f under every kernel path the CPU supports, so that
// both the portable and the vector row kernels are checked.
func forKernelPaths(t *testing.T, f func(t *testing.T)) {
	for _, p := range []kernels.Path{kernels.PathGeneric, kernels.PathAVX512} {
		prev, ok := kernels.SetKernelPath(p)
		if !ok {
			continue
		}
		t.Run(string(p), f)
		kernels.SetKernelPath(prev)
	}
}

// newSLACase builds an SLA with random DWC/positional parameters and a
// random qkv activation (Q biased positive so that denominators are well
// away from the 1e-6 floor).
func newSLACase(sh slaShape, seed uint64) (s *SLA, qkv, pos, dw, db []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	s = NewSLA("blk.attn", sh.C, sh.h, sh.H, sh.W, sh.k, true)
	N := sh.H * sh.W
	qkv = attnRound(attnRand(rng, sh.B*N*3*sh.C, 0.3, 1))
	pos = attnRound(attnRand(rng, N*sh.C, 0, 0.5))
	dw = attnRound(attnRand(rng, len(s.DWCWeight.W.Data), 0, 0.3))
	db = attnRound(attnRand(rng, len(s.DWCBias.W.Data), 0, 0.3))
	attnTo32(s.PosEnc.W.Data, pos)
	attnTo32(s.DWCWeight.W.Data, dw)
	attnTo32(s.DWCBias.W.Data, db)
	return s, qkv, pos, dw, db
}

func TestSLACoreForward(t *testing.T) { forKernelPaths(t, testSLACoreForward) }

func testSLACoreForward(t *testing.T) {
	for i, sh := range slaShapes {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			s, qkv, pos, dw, db := newSLACase(sh, uint64(i))
			x := tensor.New(sh.B, sh.H*sh.W, 3*sh.C)
			attnTo32(x.Data, qkv)
			got := s.forwardCore(x)
			assertClose(t, "core vs KᵀV-first float64", got.Data, slaCoreRef(sh, qkv, pos, dw, db), 1e-4, 1e-5)
			naive := slaCoreNaive(sh, qkv, pos, dw, db)
			assertClose(t, "core vs naive O(N²) float64", got.Data, naive, 1e-4, 1e-5)
			// Normwise relative error (elementwise relative error is
			// meaningless for outputs near zero).
			num, den := 0.0, 0.0
			for j, w := range naive {
				num += (float64(got.Data[j]) - w) * (float64(got.Data[j]) - w)
				den += w * w
			}
			rel := math.Sqrt(num / den)
			t.Logf("normwise rel err vs naive: %.3g", rel)
			if rel > 1e-4 {
				t.Errorf("normwise relative error %.3g vs naive O(N²) evaluation, want < 1e-4", rel)
			}
		})
	}
}

// TestSLACoreBackward checks dqkv, dP, dDWC weight and bias against central
// differences of the float64 reference for L = Σ R ⊙ core(qkv). Large cases
// check a random subset of the inputs.
func TestSLACoreBackward(t *testing.T) { forKernelPaths(t, testSLACoreBackward) }

func testSLACoreBackward(t *testing.T) {
	for i, sh := range slaShapes {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			s, qkv, pos, dw, db := newSLACase(sh, uint64(10+i))
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			N := sh.H * sh.W
			R := attnRound(attnRand(rng, sh.B*N*sh.C, 0, 1))
			x := tensor.New(sh.B, N, 3*sh.C)
			attnTo32(x.Data, qkv)
			s.forwardCore(x)
			dout := tensor.New(sh.B, N, sh.C)
			attnTo32(dout.Data, R)
			// Run backward twice: parameter gradients must accumulate.
			s.backwardCore(dout)
			dqkv := s.backwardCore(dout)
			loss := func() float64 {
				o := slaCoreRef(sh, qkv, pos, dw, db)
				l := 0.0
				for j := range o {
					l += o[j] * R[j]
				}
				return l
			}
			check := func(name string, got []float32, scale float64, vals []float64) {
				idx := make([]int, len(vals))
				for j := range idx {
					idx[j] = j
				}
				if len(idx) > 80 {
					rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
					idx = idx[:80]
				}
				gs := make([]float32, len(idx))
				want := make([]float64, len(idx))
				for j, ix := range idx {
					gs[j] = got[ix] / float32(scale)
					want[j] = numGrad(func(v []float64) float64 { return loss() }, vals[ix:ix+1], 1e-6)[0]
				}
				assertClose(t, name, gs, want, 2e-3, 2e-4)
			}
			check("dqkv", dqkv.Data, 1, qkv)
			check("dP", s.PosEnc.G.Data, 2, pos)
			check("dDWC.weight", s.DWCWeight.G.Data, 2, dw)
			check("dDWC.bias", s.DWCBias.G.Data, 2, db)
		})
	}
}

// attnGemmAllocates reports whether kernels.Gemm itself allocates per call
// (the portable fallback packs B^T into a fresh slice), in which case a
// layer's allocation count cannot be isolated.
func attnGemmAllocates() bool {
	a := make([]float32, 64)
	c := make([]float32, 64)
	n := testing.AllocsPerRun(3, func() {
		kernels.Gemm(false, true, 8, 8, 8, 1, a, 8, a, 8, 0, c, 8)
		kernels.Gemm(true, false, 8, 8, 8, 1, a, 8, a, 8, 0, c, 8)
	})
	return n > 0
}

// attnWithThreads runs f with kernels.SetThreads(n) and restores the count.
func attnWithThreads(n int, f func()) {
	old := kernels.Threads()
	kernels.SetThreads(n)
	defer kernels.SetThreads(old)
	f()
}

func TestSLACoreAllocs(t *testing.T) {
	for _, th := range []int{1, 2} {
		attnWithThreads(th, func() { testSLACoreAllocs(t) })
	}
}

func testSLACoreAllocs(t *testing.T) {
	if attnGemmAllocates() {
		t.Skip("kernels.Gemm allocates per call; SLA's own allocations cannot be isolated")
	}
	sh := slaShape{2, 7, 7, 8, 2, 5}
	s, qkv, _, _, _ := newSLACase(sh, 1)
	x := tensor.New(sh.B, sh.H*sh.W, 3*sh.C)
	attnTo32(x.Data, qkv)
	dout := tensor.New(sh.B, sh.H*sh.W, sh.C)
	s.forwardCore(x)
	s.backwardCore(dout)
	a := testing.AllocsPerRun(5, func() {
		s.forwardCore(x)
		s.backwardCore(dout)
	})
	t.Logf("SLA core forward+backward: %.1f allocs/run (threads %d)", a, kernels.Threads())
	if a > 0 {
		t.Errorf("SLA core steady state allocates %.1f times per forward+backward", a)
	}
}

// TestAttentionLayersAllocs checks whole layers (qkv and proj Linears
// included) at 1 and 2 threads: a steady-state training step of either
// attention allocates nothing.
func TestAttentionLayersAllocs(t *testing.T) {
	for _, th := range []int{1, 2} {
		attnWithThreads(th, func() {
			sla := NewSLA("blk.attn", 16, 2, 3, 4, 5, true)
			soft := NewAttention("blk.attn", 16, 2, true)
			x := tensor.New(2, 12, 16)
			for i := range x.Data {
				x.Data[i] = float32(i%13)*0.1 - 0.6
			}
			dy := tensor.New(2, 12, 16)
			for _, l := range []struct {
				name     string
				fwd, bwd func(*tensor.Tensor) *tensor.Tensor
			}{{"SLA", sla.Forward, sla.Backward}, {"Attention", soft.Forward, soft.Backward}} {
				l.fwd(x)
				l.bwd(dy)
				n := testing.AllocsPerRun(5, func() {
					l.fwd(x)
					l.bwd(dy)
				})
				t.Logf("%s forward+backward: %.1f allocs/run (threads %d)", l.name, n, th)
				if n > 0 {
					t.Errorf("%s steady state allocates %.1f times per forward+backward (threads %d)", l.name, n, th)
				}
			}
		})
	}
}

// TestSLAEvalPath checks SLA.Forward with prepacked weights (inferCore:
// ReLUs in the qkv GEMM's epilogue, Qr and Kr in place) against the
// training forward on the same module: equal to rounding (ksum is summed
// in another order), bit-identical at 1 and 2 threads, allocation-free in
// steady state, and a Backward after it gives the training gradients
// exactly. Shapes cover whole-map tasks, row tasks, several images (tiles
// cross image boundaries) and both kernel paths.
func TestSLAEvalPath(t *testing.T) { forKernelPaths(t, testSLAEvalPath) }

func testSLAEvalPath(t *testing.T) {
	for i, sh := range []slaShape{{2, 7, 7, 8, 2, 5}, {1, 12, 10, 16, 2, 3}, {3, 9, 11, 48, 3, 5}} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			s, _, _, _, _ := newSLACase(sh, uint64(10+i))
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			for _, p := range s.Params() {
				if p.Name == s.QKV.Weight.Name || p.Name == s.QKV.Bias.Name || p.Name == s.Proj.Weight.Name {
					attnTo32(p.W.Data, attnRand(rng, len(p.W.Data), 0.02, 0.3))
				}
			}
			x := tensor.New(sh.B, sh.H*sh.W, sh.C)
			attnTo32(x.Data, attnRand(rng, len(x.Data), 0, 1))
			dy := tensor.New(sh.B, sh.H*sh.W, sh.C)
			attnTo32(dy.Data, attnRand(rng, len(dy.Data), 0, 1))
			want := s.Forward(x).Clone()
			wantDx := s.Backward(dy).Clone()
			wantG := map[string][]float32{}
			for _, p := range s.Params() {
				wantG[p.Name] = append([]float32(nil), p.G.Data...)
				p.G.Zero()
			}
			Prepack(s)
			var got [2]*tensor.Tensor
			for k, th := range []int{1, 2} {
				attnWithThreads(th, func() { got[k] = s.Forward(x).Clone() })
			}
			assertClose(t, "eval path vs training forward", got[0].Data, toF64(want.Data), 1e-5, 1e-6)
			for j := range got[0].Data {
				if got[0].Data[j] != got[1].Data[j] {
					t.Fatalf("eval path: element %d differs between 1 and 2 threads: %g vs %g", j, got[0].Data[j], got[1].Data[j])
				}
			}
			if !attnGemmAllocates() {
				if a := testing.AllocsPerRun(3, func() { s.Forward(x) }); a > 0 {
					t.Errorf("eval path allocates %.1f times per Forward", a)
				}
			}
			s.Forward(x)
			dx := s.Backward(dy)
			for j := range dx.Data {
				if dx.Data[j] != wantDx.Data[j] {
					t.Fatalf("Backward after an eval Forward: dx[%d] = %g, want %g", j, dx.Data[j], wantDx.Data[j])
				}
			}
			for _, p := range s.Params() {
				for j, g := range p.G.Data {
					if g != wantG[p.Name][j] {
						t.Fatalf("Backward after an eval Forward: %s grad[%d] = %g, want %g", p.Name, j, g, wantG[p.Name][j])
					}
				}
			}
		})
	}
}

func toF64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}
