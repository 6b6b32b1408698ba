package nn

import (
	"fmt"

	"github.com/slabml/slab/tensor"
)

// WindowAttention is Swin's window attention (docs/method.md 3.3): for
// each window of N = w^2 tokens, [Q|K|V] = qkv(x), per head
//
//	softmax(d^-0.5 · Q Kᵀ + bias_h + mask_window) V,
//
// heads merged, then proj (Linear with bias); bias is the relative
// position bias table[index] and mask the shifted-window mask (0 / -100,
// ShiftMask) or none. Windows are the batch: x is [B·nW, N, C], window b
// using mask[b mod nW], as the official code views the logits as
// [B, nW, heads, N, N].
//
// Design: it is nn.Attention with two extra terms added to each block of
// logit rows just before its softmax (the same barrier-free head kernels,
// no extra pass over the N x N logits), and in the backward the logit
// gradient of every (window, head) is kept in the probability buffer, then
// summed over windows in a fixed order and scattered into the table
// (RelPosBias). The mask has no parameters and gets no gradient.
type WindowAttention struct {
	QKV, Proj *Linear
	RelPos    *RelPosBias
	Heads     int
	Window    int

	core Attention
}

// NewWindowAttention builds name.qkv (dim -> 3*dim, [q|k|v]), name.proj
// (dim -> dim, with bias) and name.relative_position_bias_table
// [(2w-1)^2, heads] for window x window windows.
func NewWindowAttention(name string, dim, heads, window int, qkvBias bool) *WindowAttention {
	a := NewAttention(name, dim, heads, qkvBias)
	return &WindowAttention{
		QKV: a.QKV, Proj: a.Proj, RelPos: NewRelPosBias(name, window, heads),
		Heads: heads, Window: window, core: *a,
	}
}

// Forward maps windows [B·nW, N, C] to [B·nW, N, C]. mask is nil (no
// shift) or [nW, N, N] with B·nW a multiple of nW.
func (w *WindowAttention) Forward(x, mask *tensor.Tensor) *tensor.Tensor {
	return w.Proj.Forward(w.core.forwardCore(w.QKV.Forward(w.prepare(x, mask))))
}

// ForwardAdd is res + Forward(x, mask), the residual added in proj's
// epilogue (a block's residual connection when the windows are the map
// itself: one window, no shift).
func (w *WindowAttention) ForwardAdd(x, mask, res *tensor.Tensor) *tensor.Tensor {
	return w.Proj.ForwardAdd(w.core.forwardCore(w.QKV.Forward(w.prepare(x, mask))), res)
}

// prepare checks x and mask and sets the bias and mask of the next
// forwardCore; it returns x.
func (w *WindowAttention) prepare(x, mask *tensor.Tensor) *tensor.Tensor {
	n := w.Window * w.Window
	if len(x.Shape) != 3 || x.Shape[1] != n || x.Shape[2] != w.QKV.In {
		panic(fmt.Sprintf("nn.WindowAttention(%s): input %v, want [B*nW,%d,%d]", w.QKV.Weight.Name, x.Shape, n, w.QKV.In))
	}
	if mask != nil && (len(mask.Shape) != 3 || mask.Shape[1] != n || mask.Shape[2] != n || x.Shape[0]%mask.Shape[0] != 0) {
		panic(fmt.Sprintf("nn.WindowAttention(%s): mask %v for input %v, want [nW,%d,%d] with nW dividing %d",
			w.QKV.Weight.Name, mask.Shape, x.Shape, n, n, x.Shape[0]))
	}
	if w.QKV.Packed() {
		// Evaluation: the gathered bias is rebuilt only when the table
		// changes (a serial gather of heads·N² values per call otherwise).
		w.core.bias = w.RelPos.denseCached()
	} else {
		w.core.bias = w.RelPos.Dense()
	}
	w.core.mask = mask
	return x
}

// Backward returns dx and accumulates the gradients of qkv, proj and the
// bias table.
func (w *WindowAttention) Backward(dy *tensor.Tensor) *tensor.Tensor {
	a := &w.core
	dqkv := a.backwardCore(w.Proj.Backward(dy))
	// att now holds d^-0.5 times the logit gradient of every (window, head).
	w.RelPos.accumulate(a.att.Data, a.b, 1/a.scale)
	return w.QKV.Backward(dqkv)
}

// Params lists the bias table, qkv and proj (the official module order).
func (w *WindowAttention) Params() []*Param {
	return append(append(w.RelPos.Params(), w.QKV.Params()...), w.Proj.Params()...)
}

// Buffers is empty (relative_position_index and the mask are rebuilt from
// the configuration).
func (w *WindowAttention) Buffers() []*Buffer { return nil }
