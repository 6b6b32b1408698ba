package slab

import (
	"fmt"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// maxBatch bounds the images one forward holds, so the activation buffers
// of a large request stay bounded (the request runs in chunks).
const maxBatch = 16

// InputShape is the (channels, height, width) of one input image of a
// classifier; zeros for a language model.
func (r *Model) InputShape() (c, h, w int) {
	if m, ok := r.m.(models.Classifier); ok {
		return m.InputShape()
	}
	return 0, 0, 0
}

// Classes is the number of logits per image of a classifier, the
// vocabulary size of a language model.
func (r *Model) Classes() int {
	switch m := r.m.(type) {
	case models.Classifier:
		return m.Classes()
	case models.LM:
		return m.Vocab()
	}
	return 0
}

// Logits runs a classifier on preprocessed images x [B, C, H, W] in
// evaluation mode and returns a new [B, Classes] tensor.
func (r *Model) Logits(x *tensor.Tensor) (*tensor.Tensor, error) {
	m, ok := r.m.(models.Classifier)
	if !ok {
		return nil, fmt.Errorf("slab: %s is a %s model, not an image classifier", r.Name(), r.Family())
	}
	c, h, w := m.InputShape()
	if len(x.Shape) != 4 || x.Shape[1] != c || x.Shape[2] != h || x.Shape[3] != w {
		return nil, fmt.Errorf("slab: %s takes inputs [B, %d, %d, %d], got %v", r.Name(), c, h, w, x.Shape)
	}
	if err := nn.CheckFinite("slab: input", x); err != nil {
		return nil, err // NaN in, NaN out: refuse rather than answer
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logits(m, x)
}

// logits runs x in chunks of maxBatch; the caller holds the mutex.
func (r *Model) logits(m models.Classifier, x *tensor.Tensor) (*tensor.Tensor, error) {
	b, classes := x.Shape[0], m.Classes()
	per := x.Size() / max(b, 1)
	out := tensor.New(b, classes)
	for i := 0; i < b; i += maxBatch {
		n := min(maxBatch, b-i)
		chunk, err := tensor.FromData(x.Data[i*per:(i+n)*per], n, x.Shape[1], x.Shape[2], x.Shape[3])
		if err != nil {
			return nil, err
		}
		y, err := m.Forward(chunk, nn.Eval)
		if err != nil {
			return nil, fmt.Errorf("slab: %s: %w", r.Name(), err)
		}
		copy(out.Data[i*classes:(i+n)*classes], y.Data)
	}
	return out, nil
}

// TokenLogits runs a language model on ids [batch*seq] (row-major
// [batch, seq]) in evaluation mode and returns a new [batch, seq, vocab]
// tensor of next-token logits.
func (r *Model) TokenLogits(ids []int, batch, seq int) (*tensor.Tensor, error) {
	m, ok := r.m.(models.LM)
	if !ok {
		return nil, fmt.Errorf("slab: %s is a %s model, not a language model", r.Name(), r.Family())
	}
	if batch <= 0 || seq <= 0 || len(ids) != batch*seq {
		return nil, fmt.Errorf("slab: %d ids for batch %d x seq %d", len(ids), batch, seq)
	}
	if seq > m.Context() {
		return nil, fmt.Errorf("slab: seq %d exceeds %s's context of %d", seq, r.Name(), m.Context())
	}
	for i, id := range ids {
		if id < 0 || id >= m.Vocab() {
			return nil, fmt.Errorf("slab: id %d at position %d outside the vocabulary [0, %d)", id, i, m.Vocab())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	y, err := m.Forward(ids, batch, seq, nn.Eval)
	if err != nil {
		return nil, fmt.Errorf("slab: %s: %w", r.Name(), err)
	}
	return y.Clone(), nil
}
