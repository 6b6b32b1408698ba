package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// AdaptiveInput is the adaptive input representation of Baevski & Auli
// (ICLR 2019), fairseq's AdaptiveInput: the vocabulary, sorted by
// frequency, is cut into bands [0, c1), [c1, c2), ..., [c_{k-1}, V); band
// i embeds its words in InitialDim/Factor^i dimensions and a bias-free
// Linear projects them to the model width Dim. Frequent words get wide
// embeddings, the long tail narrow ones, so the embedding table of a
// large vocabulary shrinks several times at little cost in perplexity.
//
// Parameters carry fairseq's names: band i owns NAME.embeddings.{i}.0.weight
// [Hi-Lo, d_i] (an nn.Embedding of the band's local ids) and
// NAME.embeddings.{i}.1.weight [Dim, d_i] (the nn.Linear). fairseq's
// padding_idx is not modelled: slab's vocabularies have no padding token.
//
// Forward gathers each band's rows, projects them with one GEMM per band
// and scatters the results to their positions; Backward runs the two GEMMs
// of each band and adds the embedding gradients row by row in position
// order, so the result does not depend on the thread count.
type AdaptiveInput struct {
	Vocab, Dim int
	Bands      []*AdaptiveBand

	ids   []int
	out   *tensor.Tensor
	shape []int
}

// AdaptiveBand is one frequency band of an AdaptiveInput: token ids
// [Lo, Hi), embedded in Dim dimensions by Emb [Hi-Lo, Dim] and projected to
// the model width by Proj [width, Dim] (Linear layout, y = e Proj^T).
type AdaptiveBand struct {
	Lo, Hi, Dim int
	Emb, Proj   *Param

	pos       []int32        // positions of the last Forward's ids in this band
	h, y      *tensor.Tensor // gathered embeddings [n, Dim], projections [n, width]
	dyb, dh   *tensor.Tensor
	rowsSaved int
}

// AdaptiveCutoffs returns the band ends for a vocabulary: cutoffs with
// vocab appended when it is larger than the last one (fairseq's rule), and
// an error unless they rise strictly from above 0 to vocab.
func AdaptiveCutoffs(vocab int, cutoffs []int) ([]int, error) {
	c := append([]int(nil), cutoffs...)
	if len(c) == 0 || c[len(c)-1] < vocab {
		c = append(c, vocab)
	}
	for i, v := range c {
		if v <= 0 || (i > 0 && v <= c[i-1]) || v > vocab {
			return nil, fmt.Errorf("adaptive cut-offs %v: want strictly increasing values in (0, %d] (the vocabulary size)", cutoffs, vocab)
		}
	}
	return c, nil
}

// AdaptiveDim is the width of band i: floor(dim / factor^i), as fairseq's
// int(initial_dim // factor ** i) and torch's AdaptiveLogSoftmaxWithLoss.
func AdaptiveDim(dim int, factor float64, i int) int {
	return int(math.Floor(float64(dim) / math.Pow(factor, float64(i))))
}

// NewAdaptiveInput returns a zero adaptive input for a vocabulary of vocab
// ids with band ends cutoffs (see AdaptiveCutoffs), band 0 of initialDim
// dimensions, each next band factor times narrower, projected to dim.
func NewAdaptiveInput(name string, vocab, initialDim int, factor float64, dim int, cutoffs []int) (*AdaptiveInput, error) {
	c, err := AdaptiveCutoffs(vocab, cutoffs)
	if err != nil {
		return nil, fmt.Errorf("adaptive input %s: %w", name, err)
	}
	if factor < 1 || dim < 1 {
		return nil, fmt.Errorf("adaptive input %s: factor %g and width %d, want factor >= 1 and width >= 1", name, factor, dim)
	}
	a := &AdaptiveInput{Vocab: vocab, Dim: dim}
	lo := 0
	for i, hi := range c {
		d := AdaptiveDim(initialDim, factor, i)
		if d < 1 {
			return nil, fmt.Errorf("adaptive input %s: band %d has width %d/%g^%d < 1", name, i, initialDim, factor, i)
		}
		pre := fmt.Sprintf("%s.embeddings.%d.", name, i)
		a.Bands = append(a.Bands, &AdaptiveBand{Lo: lo, Hi: hi, Dim: d,
			Emb:  NewParam(pre+"0.weight", false, hi-lo, d),
			Proj: NewParam(pre+"1.weight", false, dim, d)})
		lo = hi
	}
	return a, nil
}

// Init draws fairseq's initial values: embeddings normal(0, d^-1/2),
// projections Xavier-uniform.
func (a *AdaptiveInput) Init(rng *rand.Rand) {
	if rng == nil {
		return // a bare build (InitRand)
	}
	for _, b := range a.Bands {
		for i := range b.Emb.W.Data {
			b.Emb.W.Data[i] = float32(rng.NormFloat64() / math.Sqrt(float64(b.Dim)))
		}
		XavierUniform(b.Proj.W, rng)
		b.Emb.MarkChanged()
		b.Proj.MarkChanged()
	}
}

// band returns the band of id (ids are validated by the caller).
func (a *AdaptiveInput) band(id int) *AdaptiveBand {
	for _, b := range a.Bands[:len(a.Bands)-1] {
		if id < b.Hi {
			return b
		}
	}
	return a.Bands[len(a.Bands)-1]
}

// Forward maps ids to [shape..., Dim] (shape defaults to [len(ids)]). An id
// outside the vocabulary is an error naming it: ids come from user text.
func (a *AdaptiveInput) Forward(ids []int, shape ...int) (*tensor.Tensor, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if len(shape) == 0 {
		n = len(ids)
	}
	if n != len(ids) {
		// A copy: formatting shape itself would move every caller's
		// variadic shape to the heap (one allocation per decode step).
		return nil, fmt.Errorf("adaptive input %s: %d ids do not fill shape %v", a.Bands[0].Emb.Name, len(ids), append([]int(nil), shape...))
	}
	if len(shape) == 0 {
		a.shape = append(a.shape[:0], len(ids), a.Dim)
	} else {
		a.shape = append(append(a.shape[:0], shape...), a.Dim)
	}
	out := tensor.Ensure(&a.out, a.shape...)
	for _, b := range a.Bands {
		b.pos = b.pos[:0]
	}
	for p, id := range ids {
		if id < 0 || id >= a.Vocab {
			return nil, fmt.Errorf("adaptive input %s: token id %d out of range [0,%d)", a.Bands[0].Emb.Name, id, a.Vocab)
		}
		b := a.band(id)
		b.pos = append(b.pos, int32(p))
	}
	a.ids = append(a.ids[:0], ids...)
	D := a.Dim
	for _, b := range a.Bands {
		m, d := len(b.pos), b.Dim
		b.rowsSaved = m
		if m == 0 {
			continue
		}
		h := tensor.Ensure(&b.h, m, d)
		w := b.Emb.W.Data
		for j, p := range b.pos {
			row := (ids[p] - b.Lo) * d
			copy(h.Data[j*d:(j+1)*d], w[row:row+d])
		}
		if m == len(ids) {
			// One band holds every id (always at batch-1 decoding): project
			// straight into the output.
			kernels.GemmEpilogue(false, true, m, D, d, h.Data, d, b.Proj.W.Data, d, out.Data, D, kernels.Epilogue{})
			continue
		}
		y := tensor.Ensure(&b.y, m, D)
		kernels.GemmEpilogue(false, true, m, D, d, h.Data, d, b.Proj.W.Data, d, y.Data, D, kernels.Epilogue{})
		for j, p := range b.pos {
			copy(out.Data[int(p)*D:int(p+1)*D], y.Data[j*D:(j+1)*D])
		}
	}
	return out, nil
}

// Backward accumulates the gradients of the embeddings and projections of
// the last Forward from dy [..., Dim]. Ids need no gradient.
func (a *AdaptiveInput) Backward(dy *tensor.Tensor) {
	D := a.Dim
	if dy.Size() != len(a.ids)*D {
		panic(fmt.Sprintf("nn.AdaptiveInput %s: gradient %v for %d ids of width %d", a.Bands[0].Emb.Name, dy.Shape, len(a.ids), D))
	}
	for _, b := range a.Bands {
		m, d := len(b.pos), b.Dim
		if m == 0 {
			continue
		}
		if m != b.rowsSaved {
			panic(fmt.Sprintf("nn.AdaptiveInput %s: Backward without a matching Forward", b.Emb.Name))
		}
		dyb := dy.Data
		if m != len(a.ids) {
			g := tensor.Ensure(&b.dyb, m, D)
			for j, p := range b.pos {
				copy(g.Data[j*D:(j+1)*D], dy.Data[int(p)*D:int(p+1)*D])
			}
			dyb = g.Data
		}
		// dProj [D, d] += dyb^T h; dh [m, d] = dyb Proj.
		kernels.GemmEpilogue(true, false, D, d, m, dyb, D, b.h.Data, d, b.Proj.G.Data, d, kernels.Epilogue{Accumulate: true})
		dh := tensor.Ensure(&b.dh, m, d)
		kernels.Gemm(false, false, m, d, D, 1, dyb, D, b.Proj.W.Data, d, 0, dh.Data, d)
		g := b.Emb.G.Data
		for j, p := range b.pos {
			row := (a.ids[p] - b.Lo) * d
			kernels.AddTo(g[row:row+d], dh.Data[j*d:(j+1)*d])
		}
	}
}

// Params returns every band's embedding and projection, band by band.
func (a *AdaptiveInput) Params() []*Param {
	ps := make([]*Param, 0, 2*len(a.Bands))
	for _, b := range a.Bands {
		ps = append(ps, b.Emb, b.Proj)
	}
	return ps
}

// Buffers is empty.
func (a *AdaptiveInput) Buffers() []*Buffer { return nil }
