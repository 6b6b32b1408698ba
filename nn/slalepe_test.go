package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// slaLePERef is SLALePE in float64 from the equations (docs/method.md 3.2):
// proj(SLA core(qkv(x)) + LePE(V)), LePE a 3x3 depthwise conv over all C
// channels of V on the whole map.
func slaLePERef(sh slaShape, x []float64, s *SLALePE, p map[string][]float64) []float64 {
	N, C := sh.H*sh.W, sh.C
	rows := sh.B * N
	qkv := linRef(x, rows, C, 3*C, p["qkv.w"], p["qkv.b"])
	o := slaCoreRef(sh, qkv, p["pos"], p["dw"], p["db"])
	v := make([]float64, rows*C)
	for r := range rows {
		copy(v[r*C:(r+1)*C], qkv[r*3*C+2*C:r*3*C+3*C])
	}
	l := dwRef(v, sh.B, sh.H, sh.W, C, p["lw"], p["lb"])
	for i := range o {
		o[i] += l[i]
	}
	return linRef(o, rows, C, C, p["proj.w"], p["proj.b"])
}

func newSLALePECase(sh slaShape, seed uint64) (*SLALePE, []float64, map[string][]float64) {
	rng := rand.New(rand.NewPCG(seed, 9))
	s := NewSLALePE("stage1.0.attns.0", sh.C, sh.h, sh.H, sh.W, sh.k, true)
	p := map[string][]float64{}
	for _, v := range []struct {
		key  string
		prm  *Param
		mean float64
		std  float64
	}{
		{"qkv.w", s.QKV.Weight, 0, 0.3}, {"qkv.b", s.QKV.Bias, 0.2, 0.2}, {"proj.w", s.Proj.Weight, 0, 0.3},
		{"proj.b", s.Proj.Bias, 0, 0.3}, {"pos", s.PosEnc, 0, 0.3}, {"dw", s.DWCWeight, 0, 0.3},
		{"db", s.DWCBias, 0, 0.3}, {"lw", s.LePE.Weight, 0, 0.3}, {"lb", s.LePE.Bias, 0, 0.3},
	} {
		p[v.key] = attnRound(attnRand(rng, v.prm.W.Size(), v.mean, v.std))
		set32(v.prm, p[v.key])
	}
	x := attnRound(attnRand(rng, sh.B*sh.H*sh.W*sh.C, 0.3, 1))
	return s, x, p
}

// TestSLALePE: forward against the float64 reference; input, LePE, qkv and
// positional-encoding gradients against its central differences.
func TestSLALePE(t *testing.T) {
	for _, sh := range []slaShape{{2, 4, 5, 8, 2, 3}, {1, 6, 6, 8, 1, 5}} {
		s, x, p := newSLALePECase(sh, 3)
		rng := rand.New(rand.NewPCG(5, 5))
		N := sh.H * sh.W
		r := attnRand(rng, sh.B*N*sh.C, 0, 1)
		y := s.Forward(t32(x, sh.B, N, sh.C))
		assertClose(t, "y", y.Data, slaLePERef(sh, x, s, p), 1e-4, 1e-5)
		ZeroGrads(s.Params())
		dx := s.Backward(t32(r, sh.B, N, sh.C))
		loss := func() float64 { return dotR(slaLePERef(sh, x, s, p), r) }
		checkGrad(t, "dx", rng, dx.Data, x, loss, 24, 1e-3, 1e-4)
		checkGrad(t, "dget_v.weight", rng, s.LePE.Weight.G.Data, p["lw"], loss, 24, 1e-3, 1e-4)
		checkGrad(t, "dget_v.bias", rng, s.LePE.Bias.G.Data, p["lb"], loss, 8, 1e-3, 1e-4)
		checkGrad(t, "dqkv.weight", rng, s.QKV.Weight.G.Data, p["qkv.w"], loss, 24, 1e-3, 1e-4)
		checkGrad(t, "dpositional_encoding", rng, s.PosEnc.G.Data, p["pos"], loss, 24, 1e-3, 1e-4)
		checkGrad(t, "ddwc.weight", rng, s.DWCWeight.G.Data, p["dw"], loss, 24, 1e-3, 1e-4)
		for _, g := range s.Scale.G.Data {
			if g != 0 {
				t.Fatal("the unused scale received a gradient")
			}
		}
	}
}

// TestSLALePEThreadsAllocs: bit-identical at 1, 2 and 4 threads; a
// steady-state forward and backward allocate nothing.
func TestSLALePEThreadsAllocs(t *testing.T) {
	sh := slaShape{2, 8, 8, 16, 2, 5}
	s, x, _ := newSLALePECase(sh, 4)
	N := sh.H * sh.W
	xt := t32(x, sh.B, N, sh.C)
	dy := tensor.New(sh.B, N, sh.C)
	for i := range dy.Data {
		dy.Data[i] = float32(i%11) * 0.1
	}
	step := func() [][]float32 {
		ZeroGrads(s.Params())
		y := clone32(s.Forward(xt).Data)
		dx := clone32(s.Backward(dy).Data)
		return [][]float32{y, dx, clone32(s.QKV.Weight.G.Data), clone32(s.LePE.Weight.G.Data), clone32(s.LePE.Bias.G.Data), clone32(s.DWCWeight.G.Data)}
	}
	threadInvariant(t, step)
	if attnGemmAllocates() {
		t.Skip("GEMM allocates on this path")
	}
	if n := testing.AllocsPerRun(3, func() { s.Forward(xt); s.Backward(dy) }); n != 0 {
		t.Errorf("forward + backward: %v allocations", n)
	}
}
