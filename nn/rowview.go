package nn

import "github.com/slabml/slab/tensor"

// RowView returns a Linear whose weight, bias and gradients are rows
// [r0, r0+rows) of l's, sharing l's storage: a layer that computes one
// stacked Linear (e.g. [q | k | v]) can still expose the official model's
// separate Linears (q, kv) for loading, training and folding, with no copy.
// The view itself is never run. Its parameters know the Linear they view:
// MarkChanged on a view marks l's parameter changed too (so l's packed
// weight is rebuilt), and Prepack / Unpack / Quantize of a module listing
// only the views act on l.
func RowView(name string, l *Linear, r0, rows int) *Linear {
	in := l.In
	view := func(p *Param, suffix string, width int) *Param {
		lo, hi := r0*width, (r0+rows)*width
		shape := []int{rows, in}
		if width == 1 {
			shape = []int{rows}
		}
		v := &Param{Name: name + suffix, NoDecay: p.NoDecay, of: p, ofRow: r0,
			W: &tensor.Tensor{Shape: shape, Data: p.W.Data[lo:hi:hi]}}
		if p.G != nil {
			v.G = &tensor.Tensor{Shape: append([]int(nil), shape...), Data: p.G.Data[lo:hi:hi]}
		}
		return v
	}
	v := &Linear{In: in, Out: rows, Weight: view(l.Weight, ".weight", in)}
	if l.Bias != nil {
		v.Bias = view(l.Bias, ".bias", 1)
	}
	return v
}
