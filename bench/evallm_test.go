package bench

import (
	"math"
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

// TestDecodeCacheBytes: the floor counts what a step reads of the cache
// besides the weights: lm_test (2 layers, 2 kv heads of 8) reads 2·4·2·8
// bytes per layer and cached position, the timed steps of a 2-token
// prompt and 3 generated tokens see 3 and 4 positions; its linear
// attention (_sla) reads a fixed 2·(8·8+8) floats per layer instead.
func TestDecodeCacheBytes(t *testing.T) {
	ds, err := Decoders([]string{"lm_test", "lm_test_sla"}, 0, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Decode(ds, DecodeOptions{Prompt: 2, Generate: 3, Rounds: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{2 * 2 * 4 * 2 * 8 * (3 + 4) / 2, 2 * 4 * 2 * (8*8 + 8)} {
		m := res.Models[i]
		if m.CacheBytes != want {
			t.Errorf("%s: cache bytes %d per token, want %d", m.Name, m.CacheBytes, want)
		}
		floor := res.BandwidthGB * 1e9 / float64(m.WeightBytes+m.CacheBytes)
		if math.Abs(m.FloorTokS-floor) > 1e-9*floor {
			t.Errorf("%s: floor %g tok/s, want %g (weights and cache)", m.Name, m.FloorTokS, floor)
		}
		if r := m.WeightOfFloor / m.OfFloor; math.Abs(r-float64(m.WeightBytes)/float64(m.WeightBytes+m.CacheBytes)) > 1e-9 {
			t.Errorf("%s: weight-only fraction %g over fraction %g", m.Name, m.WeightOfFloor, m.OfFloor)
		}
	}
}
