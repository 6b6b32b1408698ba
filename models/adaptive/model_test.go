package adaptive

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// tinyConfig is adaptive_lm_tiny with the given norm and output, no
// dropout unless asked.
func tinyConfig(t *testing.T, norm, output string) Config {
	t.Helper()
	_, mc, err := models.Lookup("adaptive_lm_tiny")
	if err != nil {
		t.Fatal(err)
	}
	c := *mc.(*Config)
	c.Norm, c.Output, c.Dropout, c.TailDropout = norm, output, 0, 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// zipfIDs draws ids with probability ~ 1/(id+1), so every band of the
// adaptive input and softmax sees tokens, the frequent band most.
func zipfIDs(rng *rand.Rand, n, vocab int) []int {
	z := rand.NewZipf(rng, 1.1, 1, uint64(vocab-1))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = int(z.Uint64())
	}
	return ids
}

// TestModelGradient checks the whole backward pass (ForwardLoss and
// BackwardLoss) against central finite differences of the float64 loss,
// element by element on a few random entries of every parameter. The
// layers have their own exact tests (nn); this one catches wiring mistakes
// (residuals, the sqrt(D) scale, tying, ReLU, norm order). The ReLUs make
// the loss piecewise smooth: an entry whose estimates at two step sizes
// disagree by more than 5 % sits on a kink and is skipped (counted; at
// most a fifth may be).
func TestModelGradient(t *testing.T) {
	for _, tc := range []struct{ norm, output string }{
		{NormLN, OutputAdaptive}, {NormPRep, OutputAdaptive}, {NormLN, OutputFull}} {
		t.Run(tc.norm+"_"+tc.output, func(t *testing.T) {
			c := tinyConfig(t, tc.norm, tc.output)
			// A huge schedule pinned at lambda = 0.5: both PRepBN branches
			// get gradient and lambda does not move between calls.
			c.Warm, c.Step = 0, 1<<40
			m, err := New(c, 1)
			if err != nil {
				t.Fatal(err)
			}
			if c.Norm == NormPRep {
				for _, s := range m.Norms() {
					(*s.Norm).(*nn.LinearNorm).Iter = c.Step / 2
				}
			}
			rng := rand.New(rand.NewPCG(9, 9))
			const B, T = 2, 9
			ids := zipfIDs(rng, B*T+1, c.Vocab)
			lossAt := func() float64 {
				l, err := m.ForwardLoss(ids[:B*T], ids[1:], B, T, nn.Train)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			nn.ZeroGrads(m.Params())
			lossAt()
			m.BackwardLoss()
			numeric := func(w []float32, i int, eps float32) float64 {
				o := w[i]
				w[i] = o + eps
				lp := lossAt()
				w[i] = o - eps
				lm := lossAt()
				w[i] = o
				return (lp - lm) / (2 * float64(eps))
			}
			worst, checked, kinks := 0.0, 0, 0
			for _, p := range m.Params() {
				for range 4 {
					i := rng.IntN(p.W.Size())
					n1, n2 := numeric(p.W.Data, i, 1e-2), numeric(p.W.Data, i, 5e-3)
					checked++
					if math.Abs(n1-n2) > 0.05*math.Abs(n2)+2e-4 {
						kinks++
						continue
					}
					an := float64(p.G.Data[i])
					d := math.Abs(an - n2)
					worst = math.Max(worst, d/(math.Abs(n2)+1e-2))
					if d > 3e-2*math.Abs(n2)+1e-3 {
						t.Errorf("%s[%d]: analytic %.6g, numeric %.6g", p.Name, i, an, n2)
					}
				}
			}
			t.Logf("max rel diff %.3g over %d entries of %d params (%d on ReLU kinks skipped)", worst, checked-kinks, len(m.Params()), kinks)
			if kinks*5 > checked {
				t.Errorf("%d of %d entries on kinks", kinks, checked)
			}
		})
	}
}

// TestLossMatchesLogProb: the adaptive softmax's training loss equals the
// mean -log p(target) read from Forward's full log-probabilities, and
// every row of those is a distribution.
func TestLossMatchesLogProb(t *testing.T) {
	for _, out := range []string{OutputAdaptive, OutputFull} {
		c := tinyConfig(t, NormLN, out)
		m, err := New(c, 2)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		const B, T = 3, 11
		ids := zipfIDs(rng, B*T+1, c.Vocab)
		l, err := m.ForwardLoss(ids[:B*T], ids[1:], B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		lp, err := m.Forward(ids[:B*T], B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		V := c.Vocab
		var sum, worstMass float64
		for r := 0; r < B*T; r++ {
			row := lp.Data[r*V : (r+1)*V]
			mx := float64(row[0])
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v) - mx)
			}
			lse := mx + math.Log(z)
			if out == OutputAdaptive {
				worstMass = math.Max(worstMass, math.Abs(lse))
			}
			sum += lse - float64(row[ids[r+1]])
		}
		want := sum / float64(B*T)
		t.Logf("%s: loss %.7g, from Forward %.7g; max |log sum p| %.3g", out, l, want, worstMass)
		if math.Abs(l-want) > 1e-5*math.Abs(want) || worstMass > 1e-5 {
			t.Errorf("%s: loss %.7g but Forward gives %.7g (max |log sum p| %.3g)", out, l, want, worstMass)
		}
	}
}

// TestStepMatchesForward: the KV-cached path (a prompt, then one token at
// a time) gives the scores of the full evaluation forward at every
// position.
func TestStepMatchesForward(t *testing.T) {
	for _, out := range []string{OutputAdaptive, OutputFull} {
		c := tinyConfig(t, NormLN, out)
		m, err := New(c, 3)
		if err != nil {
			t.Fatal(err)
		}
		const T = 12
		ids := zipfIDs(rand.New(rand.NewPCG(5, 5)), T, c.Vocab)
		full, err := m.Forward(ids, 1, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), full.Data...)
		st, err := m.NewState(1, c.MaxSeq)
		if err != nil {
			t.Fatal(err)
		}
		V := c.Vocab
		worst := 0.0
		check := func(pos int, got []float32) {
			for j, g := range got {
				d := math.Abs(float64(g - want[pos*V+j]))
				worst = math.Max(worst, d)
			}
		}
		const P = 5
		lg, err := m.Step(st, ids[:P], P)
		if err != nil {
			t.Fatal(err)
		}
		check(P-1, lg.Data)
		for p := P; p < T; p++ {
			if lg, err = m.Step(st, ids[p:p+1], 1); err != nil {
				t.Fatal(err)
			}
			check(p, lg.Data)
		}
		t.Logf("%s: max abs diff cached vs full: %.3g", out, worst)
		if worst > 1e-4 {
			t.Errorf("%s: cached decoding differs from Forward by %.3g", out, worst)
		}
	}
}

// TestParamCount: the config's count is the built model's, for every
// norm and output, folded layout included.
func TestParamCount(t *testing.T) {
	for _, name := range []string{"adaptive_lm_tiny", "adaptive_lm_tiny_prepbn", "adaptive_lm_tiny_full", "adaptive_lm_small", "adaptive_lm_small_prepbn", "adaptive_lm_small_full"} {
		_, mc, err := models.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, norm := range []string{"", NormNone} {
			if norm != "" && mc.(*Config).Dim > 64 {
				continue // building the small models twice costs a second each
			}
			c := *mc.(*Config)
			if norm != "" {
				c.Norm = norm
			}
			m, err := New(c, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := models.NumParams(m), c.ParamCount(); got != want {
				t.Errorf("%s norm %s: config counts %d, model has %d", name, c.Norm, want, got)
			}
			if norm == "" {
				t.Logf("%s: %d parameters, %.3g FLOPs/token; %s", name, c.ParamCount(), float64(c.FLOPs()), c.Summary())
			}
		}
	}
}

// TestLookup: suffixes select options; bad options are named.
func TestLookup(t *testing.T) {
	_, mc, err := models.Lookup("adaptive_lm_small_full_prepbn")
	if err != nil {
		t.Fatal(err)
	}
	c := mc.(*Config)
	if c.Norm != NormPRep || c.Output != OutputFull || c.Name != "adaptive_lm_small_full_prepbn" {
		t.Errorf("adaptive_lm_small_full_prepbn: norm %s output %s name %s", c.Norm, c.Output, c.Name)
	}
	if err := c.Set("cutoffs", "100,50"); err != nil {
		t.Fatal(err)
	}
	c.Output = OutputAdaptive
	if err := c.Validate(); err == nil {
		t.Error("decreasing cut-offs accepted")
	}
	if err := c.Set("norm", "rmsnorm"); err == nil {
		t.Error("norm rmsnorm accepted")
	}
	if _, err := New(*c, 1); err == nil {
		t.Error("New accepted an invalid config")
	}
	m, err := models.New("adaptive_lm_tiny", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(models.Decoder); !ok {
		t.Error("not a models.Decoder")
	}
	if _, ok := m.(models.LossLM); !ok {
		t.Error("not a models.LossLM")
	}
	if _, err := m.(models.LM).Forward([]int{1, 2}, 1, 2, nn.Train); err == nil {
		t.Error("adaptive Forward in Train mode accepted")
	}
	if _, err := m.(models.LM).Forward([]int{1, 999}, 1, 2, nn.Eval); err == nil {
		t.Error("out-of-vocabulary id accepted")
	}
}
