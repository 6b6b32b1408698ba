package llama_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models/llama"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
)

// trainLM trains a model of cfg for steps steps of b x t random tokens at
// the given thread count, as slab train-lm does (loss, clipping, AdamW
// with weight decay), and returns every parameter, buffer and AdamW moment
// and the last step's gradients by name, and the losses.
func trainLM(t *testing.T, cfg llama.Config, threads, b, tl, steps int) (map[string][]float32, []float64) {
	t.Helper()
	old := kernels.Threads()
	kernels.SetThreads(threads)
	defer kernels.SetThreads(old)
	m, err := llama.New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	opt := train.NewAdamW(m.Params(), 0.1)
	r := rand.New(rand.NewPCG(9, 9))
	ids := make([]int, b*tl+1)
	var loss nn.VocabLoss
	var losses []float64
	for s := range steps {
		for i := range ids {
			ids[i] = r.IntN(cfg.Vocab)
		}
		nn.ZeroGrads(m.Params())
		lg, err := m.Forward(ids[:b*tl], b, tl, nn.Train)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, loss.Forward(lg, ids[1:]))
		m.Backward(loss.Backward())
		train.ClipGradNorm(m.Params(), 1)
		opt.Step(1e-3 * float64(s+1))
	}
	snap := map[string][]float32{}
	for i, p := range m.Params() {
		snap[p.Name] = append([]float32(nil), p.W.Data...)
		snap["grad:"+p.Name] = append([]float32(nil), p.G.Data...)
		snap["adam.m:"+p.Name] = append([]float32(nil), opt.M[i]...)
		snap["adam.v:"+p.Name] = append([]float32(nil), opt.V[i]...)
	}
	for _, bf := range m.Buffers() {
		if bf.F != nil {
			snap[bf.Name] = append([]float32(nil), bf.F.Data...)
		}
		if bf.I != nil {
			snap[bf.Name] = []float32{float32(*bf.I)}
		}
	}
	return snap, losses
}

// diffTensors lists the tensors of got that are not bitwise equal to want's.
func diffTensors(want, got map[string][]float32) (diffs []string) {
	for name, w := range want {
		g, ok := got[name]
		if !ok || len(g) != len(w) {
			diffs = append(diffs, name+": missing or resized")
			continue
		}
		n, worst := 0, 0.0
		for i := range w {
			if w[i] == g[i] || (math.IsNaN(float64(w[i])) && math.IsNaN(float64(g[i]))) {
				continue
			}
			n++
			worst = max(worst, math.Abs(float64(w[i]-g[i])))
		}
		if n > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: %d of %d elements differ (max abs %.3g)", name, n, len(w), worst))
		}
	}
	return diffs
}

// TestTrainingThreadInvariant trains the PRepBN decoder (softmax and
// linear attention, untied and tied heads) for a few steps at 1, 2 and 4
// threads on shapes where every kernel splits its work (B·T·Dim above the
// elementwise kernels' parallel threshold, Dim two column blocks, a
// vocabulary of hundreds of rows for the loss and the embedding) and
// requires every parameter, buffer, AdamW moment and gradient to be
// bitwise equal.
func TestTrainingThreadInvariant(t *testing.T) {
	base, err := llama.Lookup("lm_test_prepbn")
	if err != nil {
		t.Fatal(err)
	}
	base.Vocab, base.Dim, base.Heads, base.KVHeads, base.HeadDim, base.Hidden, base.MaxSeq = 600, 64, 4, 2, 16, 96, 64
	base.Warm, base.Step = 0, 2 // lambda 1 then 0.5: both branches train
	sla := base
	sla.Attn = llama.AttnSLA
	tied := base
	tied.Tied = true
	cases := []struct {
		name string
		cfg  llama.Config
	}{{"softmax", base}, {"sla", sla}, {"tied", tied}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			const b, tl, steps = 8, 64, 3
			ref, refLoss := trainLM(t, c.cfg, 1, b, tl, steps)
			for _, th := range []int{2, 4} {
				got, loss := trainLM(t, c.cfg, th, b, tl, steps)
				diffs := diffTensors(ref, got)
				t.Logf("%d threads: %d of %d tensors differ from 1 thread; losses %v vs %v", th, len(diffs), len(ref), loss, refLoss)
				for i, d := range diffs {
					if i == 20 {
						t.Logf("  ... %d more", len(diffs)-i)
						break
					}
					t.Logf("  %s", d)
				}
				if len(diffs) > 0 {
					t.Errorf("%d threads: %d tensors differ from the 1-thread run", th, len(diffs))
				}
			}
		})
	}
}
