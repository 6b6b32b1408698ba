package swin_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models/swin"
	"github.com/slabml/slab/train"
)

// noiseData is n random c x s x s images labelled by index; augmentation
// flips horizontally, drawing from the trainer's stream.
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

// snapshot copies every parameter, gradient, AdamW moment and buffer.
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

// trainSwin trains cfg for steps steps at the given thread count, then
// runs one BN re-calibration pass.
func trainSwin(t *testing.T, cfg swin.Config, threads, batch, steps int) (map[string][]float32, []float64) {
	t.Helper()
	old := kernels.Threads()
	kernels.SetThreads(threads)
	defer kernels.SetThreads(old)
	m, err := swin.New(cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	tc := train.DefaultConfig()
	tc.Epochs, tc.Batch, tc.EvalBatch, tc.LR, tc.Seed = 1, batch, 2*batch, 2e-3, 5
	tc.WarmupEpoch, tc.ScheduleT = 0, int64(2*steps) // lambda between 0 and 1: both branches train
	trainSet := noiseData{n: batch * steps, c: cfg.InChans, s: cfg.Input(), classes: cfg.Classes, seed: 1}
	testSet := noiseData{n: batch, c: cfg.InChans, s: cfg.Input(), classes: cfg.Classes, seed: 2}
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

// TestTrainingThreadInvariant trains the Fashion-MNIST variants (global
// SLA, focused attention, shifted window softmax, PRepBN, drop path) a few
// steps plus a BN re-calibration pass at 1 and 2 threads and requires
// every parameter, buffer, AdamW moment and gradient to be bitwise equal.
func TestTrainingThreadInvariant(t *testing.T) {
	for _, name := range []string{"slab_swin_mini_32", "flatten_swin_mini_32", "swin_mini_prepbn_32"} {
		t.Run(name, func(t *testing.T) {
			cfg := *lookup(t, name)
			cfg.DropPath = 0.1
			ref, refLoss := trainSwin(t, cfg, 1, 4, 2)
			got, loss := trainSwin(t, cfg, 2, 4, 2)
			diffs := diffTensors(ref, got)
			t.Logf("2 threads: %d of %d tensors differ from 1 thread; losses %v vs %v", len(diffs), len(ref), loss, refLoss)
			for i, d := range diffs {
				if i == 20 {
					t.Logf("  ... %d more", len(diffs)-i)
					break
				}
				t.Logf("  %s", d)
			}
			if len(diffs) > 0 {
				t.Errorf("2 threads: %d tensors differ from the 1-thread run", len(diffs))
			}
			for _, l := range loss {
				if math.IsNaN(l) || math.IsInf(l, 0) {
					t.Errorf("loss %v", l)
				}
			}
		})
	}
}
