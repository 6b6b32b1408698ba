package train

import (
	"strings"
	"testing"

	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/llama"
)

func setAll(t *testing.T, m models.Model, name string, v float32) {
	t.Helper()
	for _, p := range m.Params() {
		if p.Name == name {
			for i := range p.W.Data {
				p.W.Data[i] = v
			}
			p.MarkChanged()
			return
		}
	}
	t.Fatalf("no parameter %s", name)
}

// A training step whose loss is not finite names the first layer whose
// output is not (all weights finite: found by re-running the batch with
// the norms watched), and one whose loss explodes while finite stops too.
func TestLMDivergenceNamesLayer(t *testing.T) {
	stream := make([]int, 2000)
	for i := range stream {
		stream[i] = (i*i + 7*i) % 61
	}
	cfg := DefaultLMConfig()
	cfg.Steps, cfg.Batch, cfg.Seq = 5, 2, 16
	newRun := func() (*LMTrainer, models.Model) {
		m, err := models.New("lm_test", 5)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewLMTrainer(cfg, m.(models.LM), stream)
		if err != nil {
			t.Fatal(err)
		}
		return tr, m
	}

	// Layer 1's MLP overflows float32 (finite weights, infinite output).
	tr, m := newRun()
	setAll(t, m, "model.layers.1.post_attention_layernorm.weight", 1e3)
	setAll(t, m, "model.layers.1.mlp.gate_proj.weight", 1)
	setAll(t, m, "model.layers.1.mlp.up_proj.weight", 1)
	setAll(t, m, "model.layers.1.mlp.down_proj.weight", 3e38)
	_, err := tr.TrainStep()
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "step 1: loss is NaN") ||
		!strings.Contains(err.Error(), "first non-finite output: model.layers.1.mlp (input of model.norm; model.layers.1.post_attention_layernorm's input finite)") {
		t.Fatalf("overflowing MLP: %v", err)
	}
	if tr.Step != 0 {
		t.Fatalf("a diverged step advanced the trainer to step %d", tr.Step)
	}

	// Finite but exploding: logits scaled by 1e4.
	tr, m = newRun()
	setAll(t, m, "model.norm.weight", 1e4)
	_, err = tr.TrainStep()
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "far worse than the uniform guess") {
		t.Fatalf("exploding loss: %v", err)
	}

	// A healthy run does not trip the bound.
	tr, _ = newRun()
	for tr.Step < int64(cfg.Steps) {
		if l, err := tr.TrainStep(); err != nil || l > DivergedLoss(64) {
			t.Fatalf("healthy step %d: loss %g, %v", tr.Step, l, err)
		}
	}
}

// The vision trainer names the layer too: the toy model's head overflows
// after its (finite) norm.
func TestVisionDivergenceNamesLayer(t *testing.T) {
	tr := toyTrainer(t, 1)
	m := tr.Model.(*toyModel)
	for i := range m.w.W.Data {
		m.w.W.Data[i] = 3e38
	}
	m.w.MarkChanged()
	_, err := tr.TrainStep()
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "step 1: loss is NaN; first non-finite output: head (after the last norm, norm; every norm's input and output finite)") {
		t.Fatalf("overflowing head: %v", err)
	}
}
