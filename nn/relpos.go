package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// RelPosBias is Swin's relative position bias (docs/method.md 3.3): a
// learned table [(2w-1)^2, heads] and the fixed index [w^2, w^2] that
// gives, for query token i and key token j of a w x w window, the table
// row of their offset (dy, dx) in [-(w-1), w-1]^2:
//
//	index[i][j] = (y_i - y_j + w-1)·(2w-1) + (x_i - x_j + w-1)
//
// (tokens row-major in the window), built as the official code builds
// relative_position_index. Head h of every window adds
// bias[h][i][j] = table[index[i][j]][h] to its scaled logits before the
// softmax; the gradient of a table entry is the sum of the logit gradients
// of every (window, i, j) that reads it.
type RelPosBias struct {
	Table         *Param  // name.relative_position_bias_table [(2w-1)^2, heads]
	Index         []int32 // relative_position_index [w^2 * w^2], row-major
	Window, Heads int

	dense, sum *tensor.Tensor // [heads, N, N]: the gathered bias, the window-summed gradient
	denseVer   uint64         // Table's Version when dense was gathered by denseCached, plus one
	denseOf    *float32       // &Table.W.Data[0] then
}

// NewRelPosBias builds name.relative_position_bias_table (zeros; the model
// initialises it, trunc-normal std 0.02 in the official code; excluded
// from weight decay, as Swin's no_weight_decay_keywords does, docs/method.md
// 5) and the index for a window x window window.
func NewRelPosBias(name string, window, heads int) *RelPosBias {
	if window < 1 || heads < 1 {
		panic(fmt.Sprintf("nn.NewRelPosBias(%s): window %d, heads %d", name, window, heads))
	}
	t := 2*window - 1
	return &RelPosBias{
		Table: NewParam(name+".relative_position_bias_table", true, t*t, heads),
		Index: RelPosIndex(window), Window: window, Heads: heads,
	}
}

// RelPosIndex returns the official relative_position_index of a w x w
// window, [w^2 * w^2] row-major.
func RelPosIndex(w int) []int32 {
	n := w * w
	idx := make([]int32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			dy, dx := i/w-j/w+w-1, i%w-j%w+w-1
			idx[i*n+j] = int32(dy*(2*w-1) + dx)
		}
	}
	return idx
}

// Params lists the table.
func (r *RelPosBias) Params() []*Param { return []*Param{r.Table} }

// Buffers is empty: the index is a function of the window and is rebuilt,
// never loaded (an importer may compare it with the checkpoint's).
func (r *RelPosBias) Buffers() []*Buffer { return nil }

// Dense gathers table[index] into the bias [heads, N, N] (N = w^2) that
// the attention adds to its logits. The buffer is the layer's own and
// stays valid until the next call.
func (r *RelPosBias) Dense() *tensor.Tensor {
	n, h := r.Window*r.Window, r.Heads
	d := tensor.Ensure(&r.dense, h, n, n)
	tab := r.Table.W.Data
	for hh := 0; hh < h; hh++ {
		row := d.Data[hh*n*n : (hh+1)*n*n]
		for ij, k := range r.Index {
			row[ij] = tab[int(k)*h+hh]
		}
	}
	return d
}

// denseCached is Dense, gathered again only when the table's Version or
// storage changed since the last denseCached call (evaluation, where the
// table is final; writes to it must call MarkChanged, as for Prepack).
func (r *RelPosBias) denseCached() *tensor.Tensor {
	w := r.Table.W.Data
	if r.dense == nil || r.denseVer != r.Table.Version()+1 || r.denseOf != &w[0] {
		r.Dense()
		r.denseVer, r.denseOf = r.Table.Version()+1, &w[0]
	}
	return r.dense
}

// Forward adds the bias to logits [B', heads, N, N] in place (windows
// as the batch) and returns them.
func (r *RelPosBias) Forward(logits *tensor.Tensor) *tensor.Tensor {
	n, h := r.Window*r.Window, r.Heads
	if len(logits.Shape) != 4 || logits.Shape[1] != h || logits.Shape[2] != n || logits.Shape[3] != n {
		panic(fmt.Sprintf("nn.RelPosBias(%s): logits %v, want [B,%d,%d,%d]", r.Table.Name, logits.Shape, h, n, n))
	}
	d := r.Dense().Data
	for b := 0; b < logits.Shape[0]; b++ {
		kernels.AddTo(logits.Data[b*h*n*n:(b+1)*h*n*n], d)
	}
	return logits
}

// Backward accumulates the table gradient from the logit gradient
// [B', heads, N, N] and returns it unchanged (the bias is added, so the
// logits' own gradient passes through).
func (r *RelPosBias) Backward(dlogits *tensor.Tensor) *tensor.Tensor {
	n, h := r.Window*r.Window, r.Heads
	if len(dlogits.Shape) != 4 || dlogits.Shape[1] != h || dlogits.Shape[2] != n || dlogits.Shape[3] != n {
		panic(fmt.Sprintf("nn.RelPosBias(%s): gradient %v, want [B,%d,%d,%d]", r.Table.Name, dlogits.Shape, h, n, n))
	}
	r.accumulate(dlogits.Data, dlogits.Shape[0], 1)
	return dlogits
}

// accumulate adds scale·Σ_b g[b] (g: rows matrices [heads, N, N]) into the
// table gradient. Both steps have a fixed order whatever the thread count:
// the sum over windows is column-parallel (each thread owns whole output
// entries, rows added in order), and the scatter into the table, where
// many (i, j) share an entry, is serial in (head, i, j) order; it touches
// heads·N² values, a small fraction of the attention's work.
func (r *RelPosBias) accumulate(g []float32, rows int, scale float32) {
	n, h := r.Window*r.Window, r.Heads
	s := tensor.Ensure(&r.sum, h, n, n)
	s.Zero()
	kernels.ColSums(s.Data, g[:rows*h*n*n], rows, h*n*n)
	tg := r.Table.G.Data
	for hh := 0; hh < h; hh++ {
		for ij, k := range r.Index {
			tg[int(k)*h+hh] += scale * s.Data[hh*n*n+ij]
		}
	}
}
