package nn

import (
	"fmt"

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
	for i, id := range ids {
		if id < 0 || id >= e.Vocab {
			return nil, fmt.Errorf("embedding %s: token id %d out of range [0,%d)", e.Weight.Name, id, e.Vocab)
		}
		copy(out.Data[i*e.Dim:(i+1)*e.Dim], w[id*e.Dim:(id+1)*e.Dim])
	}
	return out, nil
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
