package vit_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/train"
)

// noiseData is n random c x s x s images with labels from their index
// (the values only have to exercise every kernel); augmentation flips
// images horizontally, drawing from the trainer's stream.
type noiseData struct {
	n, c, s, classes int
	seed             uint64
}

func (d noiseData) Len() int             { return d.n }
func (d noiseData) Shape() (c, h, w int) { return d.c, d.s, d.s }
func (d noiseData) Batch(idx []int, augment bool, rng *rand.Rand, x []float32, labels []int) error {
	sz := d.c * d.s * d.s
	for j, i := range idx {
		r := rand.New(rand.NewPCG(d.seed, uint64(i)))
		im := x[j*sz : (j+1)*sz]
		for p := range im {
			im[p] = float32(r.NormFloat64())
		}
		labels[j] = i % d.classes
		if augment && rng.IntN(2) == 1 {
			for row := 0; row < d.c*d.s; row++ {
				line := im[row*d.s : (row+1)*d.s]
				for a, b := 0, len(line)-1; a < b; a, b = a+1, b-1 {
					line[a], line[b] = line[b], line[a]
				}
			}
		}
	}
	return nil
}

// snapshot copies every tensor a checkpoint holds after a run, by name:
// parameters, buffers (float and integer), the AdamW moments, and the last
// step's gradients (not saved, but they locate a difference).
func snapshot(tr *train.Trainer) map[string][]float32 {
	s := map[string][]float32{}
	for i, p := range tr.Opt.Params() {
		s[p.Name] = append([]float32(nil), p.W.Data...)
		s["grad:"+p.Name] = append([]float32(nil), p.G.Data...)
		s["adam.m:"+p.Name] = append([]float32(nil), tr.Opt.M[i]...)
		s["adam.v:"+p.Name] = append([]float32(nil), tr.Opt.V[i]...)
	}
	for _, b := range tr.Model.Buffers() {
		if b.F != nil {
			s[b.Name] = append([]float32(nil), b.F.Data...)
		}
		if b.I != nil {
			s[b.Name] = []float32{float32(*b.I)}
		}
	}
	return s
}

// diffTensors lists the tensors of got that are not bitwise equal (==, and
// NaN only where want has NaN) to those of want, with the number of
// differing elements and the largest difference of the first few.
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

// trainViT trains a model of cfg for steps steps of batch images at the
// given thread count, then runs one BN re-calibration pass, and returns
// every tensor of the result and the losses.
func trainViT(t *testing.T, cfg vit.Config, threads, batch, steps int) (map[string][]float32, []float64) {
	t.Helper()
	old := kernels.Threads()
	kernels.SetThreads(threads)
	defer kernels.SetThreads(old)
	m, err := vit.New(cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	tc := train.DefaultConfig()
	tc.Epochs, tc.Batch, tc.EvalBatch, tc.LR, tc.Seed = 1, batch, 2*batch, 2e-3, 5
	tc.WarmupEpoch, tc.ScheduleT = 0, int64(2*steps) // lambda stays between 0 and 1: both branches train
	s := cfg.ImgSize
	trainSet := noiseData{n: batch * steps, c: cfg.InChans, s: s, classes: cfg.Classes, seed: 1}
	testSet := noiseData{n: batch, c: cfg.InChans, s: s, classes: cfg.Classes, seed: 2}
	tr, err := train.NewTrainer(tc, m, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	for range steps {
		rec, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, rec.Loss)
	}
	if err := tr.Recalibrate(); err != nil {
		t.Fatal(err)
	}
	return snapshot(tr), losses
}

// TestTrainingThreadInvariant trains whole vision models (PRepBN with SLA,
// on a map small enough for whole-map tasks and on one split into row
// blocks, and PRepBN with softmax attention and a class token) for a few
// steps plus a BN re-calibration pass at 1, 2 and 4 threads, and requires
// every parameter, buffer, AdamW moment and gradient to be bitwise equal:
// no reduction may depend on how the work was split between threads.
func TestTrainingThreadInvariant(t *testing.T) {
	base, err := vit.Lookup("slab_deit_mini_28")
	if err != nil {
		t.Fatal(err)
	}
	base.Depth, base.Classes = 2, 7
	slaRows := base
	slaRows.ImgSize = 40 // 10x10 tokens: SLA splits maps into row blocks
	soft, err := vit.Lookup("deit_mini_prepbn_28")
	if err != nil {
		t.Fatal(err)
	}
	soft.Depth, soft.ClsToken, soft.DropPath = 2, true, 0.1
	cases := []struct {
		name         string
		cfg          vit.Config
		batch, steps int
	}{
		// 16 (image, head) pairs of 49 tokens: whole-map SLA tasks in 8 groups.
		{"sla_whole_maps", base, 8, 3},
		// 4 pairs of 100 tokens: SLA row tasks of one map row.
		{"sla_row_blocks", slaRows, 2, 3},
		// 16 pairs, blocks of 5 map rows; 800 token rows: the blocked GEMM
		// driver (M > two L2 blocks) for the token-major products.
		{"sla_row_blocks_b8", slaRows, 8, 2},
		// 8 pairs: attention backward grouped at 2 and 4 threads, one pair
		// at a time (rows split) at 1; a class token.
		{"softmax_cls", soft, 4, 3},
		// 2 pairs: rows of each pair split across 4 threads.
		{"softmax_cls_b1", soft, 1, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref, refLoss := trainViT(t, c.cfg, 1, c.batch, c.steps)
			for _, th := range []int{2, 4} {
				got, loss := trainViT(t, c.cfg, th, c.batch, c.steps)
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
