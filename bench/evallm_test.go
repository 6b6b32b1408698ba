package bench

import (
	"testing"
)

// TestDecodeEval: with EvalBatch set every model reports an evaluation
// rate per round over its own context (T 0), an adaptive (LossLM) model
// and a full-logits one alike, and a folded PRepBN model with no rmsnorm
// model beside it is paired with the layernorm one.
func TestDecodeEval(t *testing.T) {
	names := []string{"adaptive_lm_tiny", "adaptive_lm_tiny_prepbn", "adaptive_lm_tiny_full", "lm_test"}
	ds, err := Decoders(names, 0, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Decode(ds, DecodeOptions{Prompt: 2, Generate: 3, Rounds: 2, Seed: 1, EvalBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.EvalBatch != 2 {
		t.Errorf("eval batch %d, want 2", res.EvalBatch)
	}
	for i, m := range res.Models {
		t.Logf("%s: eval %d x %d %.0f tok/s, decode %.0f tok/s", m.Name, res.EvalBatch, m.EvalSeq, m.EvalTokS, m.TokensPerSec)
		if want := ds[i].Model.Context(); m.EvalSeq != want || len(m.EvalRoundsTokS) != 2 || !(m.EvalTokS > 0) {
			t.Errorf("%s: eval seq %d (want %d), %d rounds (want 2), %g tok/s", m.Name, m.EvalSeq, want, len(m.EvalRoundsTokS), m.EvalTokS)
		}
	}
	if len(res.Pairs) != 1 || res.Pairs[0] != [2]string{"adaptive_lm_tiny_prepbn", "adaptive_lm_tiny"} {
		t.Errorf("pairs %v, want the folded prepbn model over the layernorm one", res.Pairs)
	}
	if !res.Models[1].Folded {
		t.Errorf("adaptive_lm_tiny_prepbn not folded")
	}
}
