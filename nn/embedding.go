package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Embedding maps token ids to rows of Weight [Vocab, Dim]
// (PyTorch nn.Embedding, e.g. "model.embed_tokens.weight").
type Embedding struct {
	Weight     *Param
	Vocab, Dim int
	out        *tensor.Tensor
	ids        []int
}

// NewEmbedding returns a zero embedding owning name.weight [vocab, dim].
// Token embeddings are decayed like any matrix in LLaMA training, so
// NoDecay stays false.
func NewEmbedding(name string, vocab, dim int) *Embedding {
	return &Embedding{Weight: NewParam(name+".weight", false, vocab, dim), Vocab: vocab, Dim: dim}
}

// Forward gathers the rows of ids into a [shape..., Dim] tensor (shape
// defaults to [len(ids)]). Ids out of range are an error naming the id,
// not a panic deep in a slice expression, because they come from user data.
func (e *Embedding) Forward(ids []int, shape ...int) (*tensor.Tensor, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(ids) || len(shape) > 7 {
		return nil, fmt.Errorf("embedding %s: %d ids do not fill shape %v", e.Weight.Name, len(ids), append([]int(nil), shape...))
	}
	var out *tensor.Tensor
	switch len(shape) {
	case 0:
		out = tensor.Ensure(&e.out, len(ids), e.Dim)
	case 1:
		out = tensor.Ensure(&e.out, shape[0], e.Dim)
	case 2:
		out = tensor.Ensure(&e.out, shape[0], shape[1], e.Dim)
	default:
		full := append(append([]int(nil), shape...), e.Dim)
		out = tensor.Ensure(&e.out, full...)
	}
	e.ids = append(e.ids[:0], ids...)
	w := e.Weight.W.Data
	// A table tied to a quantized output head is looked up in the head's
	// low-precision values, stored or kept beside float32 (Tie).
	var q *kernels.QMatrix
	if l := e.Weight.lin; l != nil && l.qs != nil {
		q = l.qs.get(e.Weight)
	}
	for i, id := range ids {
		if id < 0 || id >= e.Vocab {
			return nil, fmt.Errorf("embedding %s: token id %d out of range [0,%d)", e.Weight.Name, id, e.Vocab)
		}
		if q != nil {
			q.DequantizeRows(id, id+1, out.Data[i*e.Dim:(i+1)*e.Dim])
			continue
		}
		copy(out.Data[i*e.Dim:(i+1)*e.Dim], w[id*e.Dim:(id+1)*e.Dim])
	}
	return out, nil
}

// Tie returns the output projection tied to the table: a bias-free Linear
// from Dim to Vocab whose weight is e.Weight itself. The table then counts
// as a Linear weight everywhere Linears are handled (Prepack, Quantize,
// quantized checkpoints), so a tied language model is quantized whole: the
// head reads the low-precision table, and Forward looks rows up in it,
// widened to float32. Without Tie the table stays float32 under Quantize
// (an untied head is a Linear of its own). The Linear's Backward
// accumulates the head's share of the table's gradient, the Embedding's
// the lookup's share. Untie undoes it.
func (e *Embedding) Tie() *Linear {
	if e.Weight.lin == nil {
		e.Weight.lin = &linearPack{}
	}
	return &Linear{Weight: e.Weight, In: e.Dim, Out: e.Vocab}
}

// Untie makes the table an embedding only again (a model that gave its
// head a weight of its own: folding a norm into it). It is an error on a
// table stored in low precision, whose float32 values are gone.
func (e *Embedding) Untie() error {
	if Stored(e.Weight) {
		return fmt.Errorf("embedding %s is stored as %v only: it cannot be untied", e.Weight.Name, e.Weight.lin.qs.dtype)
	}
	e.Weight.lin = nil
	return nil
}

// Backward scatters dy [..., Dim] into the rows of the ids of the last
// Forward (repeated ids accumulate). Ids need no gradient, so it returns
// nothing.
func (e *Embedding) Backward(dy *tensor.Tensor) {
	g := e.Weight.G.Data
	for i, id := range e.ids {
		row := g[id*e.Dim : (id+1)*e.Dim]
		src := dy.Data[i*e.Dim : (i+1)*e.Dim]
		for j, v := range src {
			row[j] += v
		}
	}
}

// Params returns the weight.
func (e *Embedding) Params() []*Param { return []*Param{e.Weight} }

// Buffers is empty.
func (e *Embedding) Buffers() []*Buffer { return nil }
