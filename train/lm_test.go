package train

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/llama"
)

// TestLMResumeBitExact: a language-model run interrupted after 3 of 7
// steps, saved, and resumed in a fresh trainer ends with every parameter,
// buffer (the PRepBN counters and BN statistics) and AdamW moment equal,
// bit for bit, to the uninterrupted run's.
func TestLMResumeBitExact(t *testing.T) {
	stream := make([]int, 4000)
	for i := range stream {
		stream[i] = (i*i + 7*i) % 61
	}
	cfg := DefaultLMConfig()
	cfg.Steps, cfg.Batch, cfg.Seq, cfg.PRepBNWarm, cfg.PRepBNDecay = 7, 2, 16, 0.2, 0.5
	newRun := func() *LMTrainer {
		m, err := models.New("lm_test_prepbn", 5)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewLMTrainer(cfg, m.(models.LM), stream)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	straight := newRun()
	for straight.Step < int64(cfg.Steps) {
		if _, err := straight.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	first := newRun()
	for first.Step < 3 {
		if _, err := first.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := first.Save(path); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	second := newRun()
	if err := second.Restore(f, path); err != nil {
		t.Fatal(err)
	}
	for second.Step < int64(cfg.Steps) {
		if _, err := second.TrainStep(); err != nil {
			t.Fatal(err)
		}
	}
	a, b := models.StateDict(straight.Model), models.StateDict(second.Model)
	differ := 0
	for k, e := range a {
		if !slices.Equal(e.F32, b[k].F32) || !slices.Equal(e.I64, b[k].I64) {
			differ++
			t.Errorf("%s differs after resume", k)
		}
	}
	for i := range straight.Opt.M {
		if !slices.Equal(straight.Opt.M[i], second.Opt.M[i]) || !slices.Equal(straight.Opt.V[i], second.Opt.V[i]) {
			differ++
			t.Errorf("AdamW moments of %s differ after resume", straight.Opt.Params()[i].Name)
		}
	}
	if straight.Opt.Steps != second.Opt.Steps || models.Lambda(straight.Model) != models.Lambda(second.Model) {
		t.Errorf("optimizer steps %d vs %d, lambda %g vs %g", straight.Opt.Steps, second.Opt.Steps, models.Lambda(straight.Model), models.Lambda(second.Model))
	}
	t.Logf("%d tensors + %d moment pairs compared, %d differ; lambda at the end %g", len(a), len(straight.Opt.M), differ, models.Lambda(second.Model))
	// A finished run's checkpoint is outside a shorter recipe.
	short := cfg
	short.Steps = 2
	m, _ := models.New("lm_test_prepbn", 5)
	tr, _ := NewLMTrainer(short, m.(models.LM), stream)
	if err := tr.Restore(f, path); err == nil {
		t.Error("a 3-step checkpoint restored into a 2-step recipe")
	}
}
