package train_test

import (
	"math"
	"testing"

	"github.com/slabml/slab/models"
	_ "github.com/slabml/slab/models/adaptive"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
)

// TestLossLM: a models.LossLM (the adaptive softmax, which refuses full
// logits in training) trains through ForwardLoss/BackwardLoss, its loss
// falls, and EvaluateLM scores it through ForwardLoss.
func TestLossLM(t *testing.T) {
	stream := make([]int, 3000)
	for i := range stream {
		stream[i] = (i*i + 3*i) % 150
	}
	m, err := models.New("adaptive_lm_tiny", 1)
	if err != nil {
		t.Fatal(err)
	}
	lm := m.(models.LM)
	if _, err := lm.Forward(stream[:8], 1, 8, nn.Train); err == nil {
		t.Fatal("adaptive Forward accepted Train mode: this test would not show the LossLM path")
	}
	cfg := train.DefaultLMConfig()
	cfg.Steps, cfg.Batch, cfg.Seq = 30, 4, 16
	tr, err := train.NewLMTrainer(cfg, lm, stream)
	if err != nil {
		t.Fatal(err)
	}
	var first, last float64
	for tr.Step < int64(cfg.Steps) {
		l, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if tr.Step == 1 {
			first = l
		}
		last = l
	}
	ev, n, err := train.EvaluateLM(lm, stream, 2, 16, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.(models.LossLM).ForwardLoss(stream[:16], stream[1:17], 1, 16, nn.Eval)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss %.4f -> %.4f over %d steps; eval %.4f on %d tokens (first window alone %.4f)", first, last, cfg.Steps, ev, n, want)
	if !(last < first) || math.IsNaN(ev) || n != 3*2*16 {
		t.Errorf("loss %.4f -> %.4f, eval %.4f on %d tokens", first, last, ev, n)
	}
}
