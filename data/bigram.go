package data

import (
	"fmt"
	"math"
)

// Bigram is a bigram language model with add-one (Laplace) smoothing over
// a vocabulary of V ids:
//
//	P(w | v) = (c(v, w) + 1) / (c(v) + V)
//
// where c(v, w) counts the pairs "v w" of the training stream and c(v)
// counts v as the first of a pair. It is the floor a neural language model
// must beat on the same tokens: it needs no training beyond counting, and
// every pair gets some probability, so its perplexity is finite on any
// stream.
type Bigram struct {
	V     int
	ctx   []int64          // c(v)
	pairs map[uint64]int64 // c(v, w), keyed v*V + w
}

// NewBigram counts the pairs of train, whose ids must lie in [0, vocab).
func NewBigram(train []int, vocab int) (*Bigram, error) {
	if vocab < 1 {
		return nil, fmt.Errorf("bigram: vocabulary size %d", vocab)
	}
	b := &Bigram{V: vocab, ctx: make([]int64, vocab), pairs: map[uint64]int64{}}
	for i, id := range train {
		if id < 0 || id >= vocab {
			return nil, fmt.Errorf("bigram: training token %d is id %d, outside [0,%d)", i, id, vocab)
		}
		if i > 0 {
			v := train[i-1]
			b.ctx[v]++
			b.pairs[uint64(v)*uint64(vocab)+uint64(id)]++
		}
	}
	return b, nil
}

// LogProb returns log P(next | prev) (natural log).
func (b *Bigram) LogProb(prev, next int) float64 {
	c := b.pairs[uint64(prev)*uint64(b.V)+uint64(next)]
	return math.Log(float64(c+1)) - math.Log(float64(b.ctx[prev]+int64(b.V)))
}

// Perplexity returns exp of the mean negative log-probability of every
// token of stream after the first given the one before it, and the number
// of tokens scored (len(stream)-1, as a language model scores the targets
// of its windows).
func (b *Bigram) Perplexity(stream []int) (float64, int, error) {
	if len(stream) < 2 {
		return 0, 0, fmt.Errorf("bigram: a stream of %d tokens has no pair to score", len(stream))
	}
	var nll float64
	for i, id := range stream {
		if id < 0 || id >= b.V {
			return 0, 0, fmt.Errorf("bigram: token %d is id %d, outside [0,%d)", i, id, b.V)
		}
		if i > 0 {
			nll -= b.LogProb(stream[i-1], id)
		}
	}
	n := len(stream) - 1
	return math.Exp(nll / float64(n)), n, nil
}
