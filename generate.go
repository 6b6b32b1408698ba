package slab

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/slabml/slab/data"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// GenerateOptions say how Generate samples. The zero value with Tokens set
// is greedy decoding, which is deterministic.
type GenerateOptions struct {
	// Tokens is how many tokens to generate (> 0).
	Tokens int
	// Temperature scales the logits before sampling; 0 picks the most
	// likely token (greedy).
	Temperature float64
	// TopK samples among the k most likely tokens (0: all); TopP among the
	// smallest set holding that probability mass (0 or 1: off).
	TopK int
	TopP float64
	// Seed seeds the sampler: the same seed, prompt and options give the
	// same text.
	Seed uint64
	// Emit, when set, receives the text as it is generated (whole UTF-8
	// characters only) and stops generation by returning false. It runs
	// while Generate holds the model: it must not call the same Model
	// (that would deadlock), and a slow Emit delays other callers.
	Emit func(text string) bool
}

// Generate continues prompt with a language model and returns the
// generated text (without the prompt). It encodes with the tokenizer the
// checkpoint records, keeps a KV cache (a longer prompt + Tokens than the
// model's context slides it), and stops early when ctx is done (returning
// the text so far and ctx's error) or Emit returns false. Each call
// allocates its session (the KV cache for prompt + Tokens positions).
func (r *Model) Generate(ctx context.Context, prompt string, o GenerateOptions) (string, error) {
	m, ok := r.m.(models.Decoder)
	if !ok {
		return "", fmt.Errorf("slab: %s is a %s model, not a language model", r.Name(), r.Family())
	}
	if r.tok == nil {
		return "", fmt.Errorf("slab: %s records no tokenizer (an imported state dict): use TokenLogits, or a slab checkpoint", r.path)
	}
	if o.Tokens <= 0 {
		return "", fmt.Errorf("slab: GenerateOptions.Tokens must be positive, got %d", o.Tokens)
	}
	if !(o.Temperature >= 0) || math.IsInf(o.Temperature, 1) || o.TopK < 0 || !(o.TopP >= 0 && o.TopP <= 1) { // NaN fails too
		return "", fmt.Errorf("slab: bad sampling options: temperature %g, top-k %d, top-p %g", o.Temperature, o.TopK, o.TopP)
	}
	ids, err := r.tok.Encode(prompt)
	if err != nil {
		return "", fmt.Errorf("slab: encoding the prompt: %w", err)
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("slab: empty prompt")
	}
	topP := o.TopP
	if topP == 0 {
		topP = 1
	}
	smp := nn.NewSampler(o.Temperature, o.TopK, topP, o.Seed)
	dec := &data.StreamDecoder{T: r.tok}
	var text strings.Builder
	var stopErr error
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := m.NewSession(1, min(len(ids)+o.Tokens, m.Context()))
	if err != nil {
		return "", fmt.Errorf("slab: %s: %w", r.Name(), err)
	}
	_, err = st.Generate(ids, o.Tokens, smp, nil, func(id int) bool {
		b, err := dec.Push(id)
		if err != nil {
			stopErr = err
			return false
		}
		text.Write(b)
		if o.Emit != nil && len(b) > 0 && !o.Emit(string(b)) {
			return false
		}
		if err := ctx.Err(); err != nil {
			stopErr = err
			return false
		}
		return true
	})
	if err != nil {
		return text.String(), fmt.Errorf("slab: %s: %w", r.Name(), err)
	}
	if tail := dec.Flush(); len(tail) > 0 {
		text.Write(tail)
		if o.Emit != nil {
			o.Emit(string(tail))
		}
	}
	return text.String(), stopErr
}
