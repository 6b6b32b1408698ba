package llama

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// The PRepBN norms of a decoder, by state-dict prefix: every block's two
// norms and the final one.
func prepbnNorms(m *Model) map[string]nn.Norm {
	ns := map[string]nn.Norm{"model.norm": m.Norm}
	for i, b := range m.Blocks {
		ns[fmt.Sprintf("model.layers.%d.input_layernorm", i)] = b.InputNorm
		ns[fmt.Sprintf("model.layers.%d.post_attention_layernorm", i)] = b.PostNorm
	}
	return ns
}

func paramsByName(m *Model) map[string]*nn.Param {
	ps := map[string]*nn.Param{}
	for _, p := range m.Params() {
		ps[p.Name] = p
	}
	return ps
}

func buffersByName(m *Model) map[string]*nn.Buffer {
	bs := map[string]*nn.Buffer{}
	for _, b := range m.Buffers() {
		bs[b.Name] = b
	}
	return bs
}

// trainForward is one training call of a norm (the one line to change
// when the Norm interface changes).
func trainForward(n nn.Norm, x *tensor.Tensor) *tensor.Tensor { return n.Forward(x, nn.Train) }

// TestRepBNInit checks both RepBN initialisations of the PRepBN decoder by
// parameter name (docs/method.md 6.1): "official" sets alpha, bn.weight and
// bn.bias to 0, "vision" sets alpha = bn.weight = 1 and bn.bias = 0; the
// RMSNorm branch's weight is 1 in both.
func TestRepBNInit(t *testing.T) {
	for _, c := range []struct {
		init         string
		alpha, gamma float32
	}{{InitOffic, 0, 0}, {InitVis, 1, 1}} {
		cfg, err := Lookup("lm_test_prepbn")
		if err != nil {
			t.Fatal(err)
		}
		cfg.RepBNInit = c.init
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		ps := paramsByName(m)
		want := map[string]float32{".norm1.weight": 1, ".norm2.alpha": c.alpha, ".norm2.bn.weight": c.gamma, ".norm2.bn.bias": 0}
		checked := 0
		for prefix := range prepbnNorms(m) {
			for suffix, v := range want {
				p, ok := ps[prefix+suffix]
				if !ok {
					t.Fatalf("%s: no parameter %s", c.init, prefix+suffix)
				}
				if n := len(p.W.Data); n != 1 && n != cfg.Dim {
					t.Errorf("%s: %s has %d elements, want 1 or %d", c.init, p.Name, n, cfg.Dim)
				}
				for i, got := range p.W.Data {
					if got != v {
						t.Fatalf("%s init: %s[%d] = %v, want %v", c.init, p.Name, i, got, v)
					}
				}
				checked++
			}
		}
		t.Logf("%s init: %d norm parameters hold alpha %v, bn.weight %v, bn.bias 0, norm1.weight 1", c.init, checked, c.alpha, c.gamma)
	}
}

// rmsRef is RMSNorm in float64: w * x / sqrt(mean(x^2) + eps) per row.
func rmsRef(x []float32, w []float32, dim int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/dim; r++ {
		row := x[r*dim : (r+1)*dim]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		s := 1 / math.Sqrt(ss/float64(dim)+eps)
		for j, v := range row {
			y[r*dim+j] = float64(w[j]) * float64(v) * s
		}
	}
	return y
}

// bnRef is training-mode BatchNorm in float64 (biased batch variance) with
// gamma 1, beta 0.
func bnRef(x []float32, dim int, eps float64) []float64 {
	rows := len(x) / dim
	y := make([]float64, len(x))
	for j := 0; j < dim; j++ {
		var s, ss float64
		for r := 0; r < rows; r++ {
			s += float64(x[r*dim+j])
		}
		mu := s / float64(rows)
		for r := 0; r < rows; r++ {
			d := float64(x[r*dim+j]) - mu
			ss += d * d
		}
		inv := 1 / math.Sqrt(ss/float64(rows)+eps)
		for r := 0; r < rows; r++ {
			y[r*dim+j] = (float64(x[r*dim+j]) - mu) * inv
		}
	}
	return y
}

// smallInput is [rows, dim] with values of order 1e-3, so that mean(x^2)
// and the channel variances are of order eps = 1e-6 and a different eps
// changes the output by tens of percent.
func smallInput(rows, dim int, seed uint64) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := tensor.New(rows, dim)
	for i := range x.Data {
		x.Data[i] = float32(1e-3 * (rng.NormFloat64() + 0.3*float64(i%dim)/float64(dim)))
	}
	return x
}

func maxRel(got []float32, want []float64) float64 {
	var worst, scale float64
	for i := range want {
		worst = max(worst, math.Abs(float64(got[i])-want[i]))
		scale = max(scale, math.Abs(want[i]))
	}
	return worst / scale
}

// TestRepBNInitBehaviour checks what the official initialisation means in
// training: after the warm phase every PRepBN norm outputs
// lambda*RMSNorm(x) (its RepBN branch is exactly 0), lambda following the
// LLaMA schedule, and 0 once lambda reaches 0; with the vision init the
// same output differs. Both branches use eps 1e-6 (rms_norm_eps): the
// RMSNorm output is checked on inputs where eps matters, and so is the BN
// once bn.weight is set to 1 by name.
func TestRepBNInitBehaviour(t *testing.T) {
	const rows = 24
	for _, init := range []string{InitOffic, InitVis} {
		cfg, err := Lookup("lm_test_prepbn")
		if err != nil {
			t.Fatal(err)
		}
		cfg.RepBNInit, cfg.Warm, cfg.Step = init, 1, 2
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		ps, bs := paramsByName(m), buffersByName(m)
		// A non-trivial RMSNorm weight, so the check sees it.
		for prefix := range prepbnNorms(m) {
			for j, w := range ps[prefix+".norm1.weight"].W.Data {
				ps[prefix+".norm1.weight"].W.Data[j] = w + 0.25*float32(j%5)
			}
		}
		var worstRMS, worstOther float64
		lambdas := map[float64]int{}
		for prefix, n := range prepbnNorms(m) {
			w := ps[prefix+".norm1.weight"].W.Data
			// Warm 1, Step 2 in units of 16 calls: one warm call, then
			// lambda 1, 0.5 (16 calls each) and 0.
			for call := 0; call < 40; call++ {
				warm, iter, total := *bs[prefix+".warm"].I, *bs[prefix+".iter"].I, *bs[prefix+".total_step"].I
				lambda := 1.0
				if warm == 0 {
					lambda = float64(iter) / float64(total)
				}
				x := smallInput(rows, cfg.Dim, uint64(call))
				y := trainForward(n, x)
				rms := rmsRef(x.Data, w, cfg.Dim, 1e-6)
				if warm == 0 {
					lambdas[lambda]++
				}
				want := make([]float64, len(rms))
				for i := range rms {
					want[i] = lambda * rms[i]
				}
				if lambda == 0 {
					for i, v := range y.Data {
						if init == InitOffic && v != 0 {
							t.Fatalf("%s %s call %d: lambda 0 output[%d] = %v, want exactly 0", init, prefix, call, i, v)
						}
					}
					continue
				}
				d := maxRel(y.Data, want)
				if init == InitOffic || lambda == 1 {
					worstRMS = max(worstRMS, d)
					if d > 1e-6 {
						t.Fatalf("%s %s call %d (lambda %v): output differs from lambda*RMSNorm(x) by %.2e relative", init, prefix, call, lambda, d)
					}
				} else {
					worstOther = max(worstOther, d)
				}
			}
		}
		t.Logf("%s init: calls per lambda after warm-up %v; max rel diff from lambda*RMSNorm(x, eps 1e-6) %.2e", init, lambdas, worstRMS)
		if lambdas[0.5] == 0 || lambdas[0] == 0 {
			t.Fatalf("%s init: the schedule never reached lambda 0.5 and 0 (%v)", init, lambdas)
		}
		if init == InitVis {
			t.Logf("vision init at lambda 0.5: differs from lambda*RMSNorm(x) by %.2f relative (the RepBN branch is not 0)", worstOther)
			if worstOther < 0.1 {
				t.Errorf("vision init: output at lambda 0.5 is lambda*RMSNorm(x) (diff %.2e): the check cannot tell the inits apart", worstOther)
			}
			continue
		}
		// The BN branch's eps: with bn.weight set to 1 (alpha and bn.bias
		// stay 0), the lambda-0 output is training-mode BN(x) alone.
		for prefix, n := range prepbnNorms(m) {
			for j := range ps[prefix+".norm2.bn.weight"].W.Data {
				ps[prefix+".norm2.bn.weight"].W.Data[j] = 1
			}
			x := smallInput(rows, cfg.Dim, 99)
			y := trainForward(n, x)
			d := maxRel(y.Data, bnRef(x.Data, cfg.Dim, 1e-6))
			if d > 1e-5 {
				t.Errorf("%s: BN(x) with bn.weight 1 differs from BN with eps 1e-6 by %.2e relative", prefix, d)
			}
			if prefix == "model.norm" {
				t.Logf("official init, bn.weight set to 1: max rel diff from BN(x, eps 1e-6) %.2e (eps 1e-5 would give %.2f)", d, maxRel(y.Data, bnRef(x.Data, cfg.Dim, 1e-5)))
			}
		}
	}
}
