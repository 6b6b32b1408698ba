package fuse

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/models/llama"
	"github.com/slabml/slab/nn"
)

// TestFuseLLaMA trains a PRepBN decoder for a few steps' worth of forward
// passes (so the BN running statistics and the RepBN parameters are far
// from their init), folds it, and checks that the folded model's eval
// logits match the unfolded ones (rel err < 1e-4) and that greedy
// generation picks the same tokens, for tied and untied heads.
func TestFuseLLaMA(t *testing.T) {
	for _, tc := range []struct {
		init string
		tied bool
	}{{llama.InitVis, false}, {llama.InitVis, true}, {llama.InitOffic, false}} {
		c, err := llama.Lookup("lm_test_prepbn")
		if err != nil {
			t.Fatal(err)
		}
		c.RepBNInit, c.Tied, c.Warm = tc.init, tc.tied, 0
		m, err := llama.New(c, 3)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(8, 8))
		// Random affine parameters (the official init is all zero, which
		// would make the test trivial), then real statistics.
		for _, p := range m.Params() {
			if len(p.W.Shape) == 1 {
				for i := range p.W.Data {
					p.W.Data[i] = float32(0.5 + rng.Float64())
				}
			}
		}
		const B, T = 2, 12
		ids := make([]int, B*T)
		for k := 0; k < 20; k++ {
			for i := range ids {
				ids[i] = rng.IntN(c.Vocab)
			}
			if _, err := m.Forward(ids, B, T, nn.Train); err != nil {
				t.Fatal(err)
			}
		}
		ref, err := m.Forward(ids, B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), ref.Data...)
		st, _ := m.NewState(1, T+8)
		greedy := nn.NewSampler(0, 0, 1, 1)
		wantGen, err := m.Generate(st, ids[:T], 8, greedy, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := Fold(m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.Blocks[0].InputNorm.(nn.Identity); !ok || m.LMHead == nil || m.LMHead.Bias == nil {
			t.Fatal("fold left a norm or an unbiased lm_head")
		}
		got, err := m.Forward(ids, B, T, nn.Eval)
		if err != nil {
			t.Fatal(err)
		}
		var num, den, maxAbs float64
		for i, g := range got.Data {
			d := float64(g - want[i])
			num += d * d
			den += float64(want[i]) * float64(want[i])
			maxAbs = math.Max(maxAbs, math.Abs(d))
		}
		rel := math.Sqrt(num / den)
		t.Logf("init %s tied %v: folded vs unfolded logits rel err %.3g, max abs diff %.3g", tc.init, tc.tied, rel, maxAbs)
		if rel > 1e-4 {
			t.Fatalf("rel err %.3g > 1e-4", rel)
		}
		gotGen, err := m.Generate(st, ids[:T], 8, greedy, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range wantGen {
			if gotGen[i] != wantGen[i] {
				t.Fatalf("greedy token %d: folded %d, unfolded %d", i, gotGen[i], wantGen[i])
			}
		}
	}
	c, _ := llama.Lookup("lm_test_rmsnorm")
	m, _ := llama.New(c, 1)
	if err := Fold(m); err == nil {
		t.Fatal("rmsnorm model folded")
	}
}
