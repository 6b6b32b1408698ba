package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// BenchmarkAdaptiveOutput compares the output layer of a word-level
// language model at SOTU's scale (vocabulary 15,666 at min count 3, width
// 256, cut-offs [2000, 8000], which put 87 % and 98 % of the training
// tokens below them) with a full softmax (Linear + CrossEntropy): a
// training step over 512 rows, evaluation of 512 rows and the
// distribution of one row (generation). Targets follow the corpus's
// frequency profile roughly (Zipf-like).
func BenchmarkAdaptiveOutput(b *testing.B) {
	const V, D, rows = 15666, 256, 512
	rng := rand.New(rand.NewPCG(1, 2))
	x := blRand(3, 1, rows, D)
	x1 := blRand(4, 1, 1, D)
	targets := make([]int, rows)
	for i := range targets {
		targets[i] = min(V-1, int(math.Exp(rng.Float64()*math.Log(V))))
	}
	ai, _ := NewAdaptiveInput("embed_tokens", V, D, 4, D, []int{2000, 8000})
	ai.Init(rng)
	as, _ := NewTiedAdaptiveSoftmax("adaptive_softmax", D, ai, true)
	as.Init(rng)
	full := NewLinear("head", D, V, false)
	XavierUniform(full.Weight.W, rng)
	var ce CrossEntropy
	b.Run("train/adaptive", func(b *testing.B) {
		for b.Loop() {
			as.Forward(x, targets)
			as.Backward()
		}
	})
	b.Run("train/full", func(b *testing.B) {
		for b.Loop() {
			ce.Forward(full.Forward(x), targets)
			full.Backward(ce.Backward())
		}
	})
	b.Run("eval/adaptive", func(b *testing.B) {
		for b.Loop() {
			as.Forward(x, targets)
		}
	})
	b.Run("eval/full", func(b *testing.B) {
		for b.Loop() {
			ce.Forward(full.Forward(x), targets)
		}
	})
	b.Run("logprob1/adaptive", func(b *testing.B) {
		for b.Loop() {
			as.LogProb(x1)
		}
	})
	b.Run("logprob1/full", func(b *testing.B) {
		for b.Loop() {
			ce.Forward(full.Forward(x1), targets[:1])
		}
	})
}
