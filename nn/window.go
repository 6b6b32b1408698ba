package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Swin's windows (docs/method.md 3.3, 4.3). A block with shift s rolls its
// H x W token map by -s on both axes (torch.roll(x, (-s, -s), (1, 2))),
// cuts it into non-overlapping ws x ws windows, runs attention with the
// windows as the batch, then undoes both steps. The official code does
// this as roll, window_partition, window_reverse, roll(+s); all four are
// permutations of tokens, and so is their composition, so here the whole
// round trip is one precomputed permutation of token indices:
//
//	windows[b*nW + w][r*ws + c] = x[b][((wy*ws+r+s) mod H)*W + (wx*ws+c+s) mod W]
//
// with w = wy*(W/ws) + wx (windows in row-major order, tokens in row-major
// order inside a window, as window_partition lays them out). Partition is
// a gather of whole C-channel rows through that permutation, the reverse
// is the scatter through it, and each one's backward is the other.

// windowPerm returns, for each position of the partitioned layout (window
// major), the token index it reads in the H x W map: the official
// roll(-shift) followed by window_partition.
func windowPerm(h, w, ws, shift int) []int32 {
	perm := make([]int32, h*w)
	nwx := w / ws
	for p := range perm {
		win, t := p/(ws*ws), p%(ws*ws)
		y := (win/nwx)*ws + t/ws
		x := (win%nwx)*ws + t%ws
		perm[p] = int32(((y+shift)%h)*w + (x+shift)%w)
	}
	return perm
}

// checkWindows validates a window configuration for the layers below.
func checkWindows(what string, h, w, ws, shift int) {
	if ws < 1 || h%ws != 0 || w%ws != 0 || shift < 0 || shift >= ws {
		panic(fmt.Sprintf("nn.%s: map %dx%d, window %d, shift %d: the map must be a whole number of windows and 0 <= shift < window",
			what, h, w, ws, shift))
	}
}

// WindowPartition maps tokens [B, H*W, C] of an H x W map to windows
// [B*nW, ws*ws, C] after a cyclic shift by -Shift on both axes (Shift 0:
// plain partition), exactly as the official roll + window_partition.
type WindowPartition struct {
	H, W, Window, Shift int

	perm   []int32
	y, dx  *tensor.Tensor
	src    *tensor.Tensor
	dst    *tensor.Tensor
	b, c   int
	gather bool
	res    []float32 // a scatter adds res's rows (WindowReverse.ForwardAdd)
	fn     func(lo, hi int)
}

// NewWindowPartition builds the partition of an h x w map into ws x ws
// windows after a shift by -shift. The map must be a whole number of
// windows (the classification models' sizes are; padding, as the detection
// backbone does, belongs to the caller).
func NewWindowPartition(h, w, ws, shift int) *WindowPartition {
	checkWindows("NewWindowPartition", h, w, ws, shift)
	return &WindowPartition{H: h, W: w, Window: ws, Shift: shift, perm: windowPerm(h, w, ws, shift)}
}

// Windows returns the number of windows per image.
func (p *WindowPartition) Windows() int { return (p.H / p.Window) * (p.W / p.Window) }

// Forward maps [B, H*W, C] to [B*nW, ws*ws, C].
func (p *WindowPartition) Forward(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 3 || x.Shape[1] != p.H*p.W {
		panic(fmt.Sprintf("nn.WindowPartition: input %v, want [B,%d,C]", x.Shape, p.H*p.W))
	}
	b, c := x.Shape[0], x.Shape[2]
	y := tensor.Ensure(&p.y, b*p.Windows(), p.Window*p.Window, c)
	p.permute(x, y, b, c, true)
	return y
}

// Backward maps dy [B*nW, ws*ws, C] to dx [B, H*W, C]: the inverse
// permutation (window_reverse, then roll by +Shift).
func (p *WindowPartition) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if p.y == nil || !tensor.SameShape(dy, p.y) {
		panic(fmt.Sprintf("nn.WindowPartition: gradient %v does not match the last Forward's output", dy.Shape))
	}
	b, c := p.b, p.c
	dx := tensor.Ensure(&p.dx, b, p.H*p.W, c)
	p.permute(dy, dx, b, c, false)
	return dx
}

// permute copies rows of src into dst through perm: a gather (dst row p
// = src row perm[p]) or a scatter (dst row perm[p] = src row p), per
// image. Each destination row is written once, so rows split freely across
// threads.
func (p *WindowPartition) permute(src, dst *tensor.Tensor, b, c int, gather bool) {
	if p.fn == nil {
		p.fn = p.permTask
	}
	p.src, p.dst, p.b, p.c, p.gather = src, dst, b, c, gather
	kernels.ParallelFor(b*p.H*p.W, 256, p.fn)
}

func (p *WindowPartition) permTask(lo, hi int) {
	n, c := p.H*p.W, p.c
	s, d := p.src.Data, p.dst.Data
	for r := lo; r < hi; r++ {
		base, q := r-r%n, int(p.perm[r%n])
		switch {
		case p.gather:
			copy(d[r*c:(r+1)*c], s[(base+q)*c:(base+q+1)*c])
		case p.res != nil:
			kernels.Add(d[(base+q)*c:(base+q+1)*c], p.res[(base+q)*c:(base+q+1)*c], s[r*c:(r+1)*c])
		default:
			copy(d[(base+q)*c:(base+q+1)*c], s[r*c:(r+1)*c])
		}
	}
}

// WindowReverse is WindowPartition's inverse: windows [B*nW, ws*ws, C]
// back to tokens [B, H*W, C] (official window_reverse, then roll by
// +Shift). Its backward is the partition.
type WindowReverse struct {
	p WindowPartition
}

// NewWindowReverse builds the inverse of NewWindowPartition(h, w, ws, shift).
func NewWindowReverse(h, w, ws, shift int) *WindowReverse {
	checkWindows("NewWindowReverse", h, w, ws, shift)
	return &WindowReverse{p: WindowPartition{H: h, W: w, Window: ws, Shift: shift, perm: windowPerm(h, w, ws, shift)}}
}

// Forward maps [B*nW, ws*ws, C] to [B, H*W, C].
func (r *WindowReverse) Forward(win *tensor.Tensor) *tensor.Tensor {
	y, b, c := r.output(win)
	r.p.permute(win, y, b, c, false)
	return y
}

// output checks win and returns the output buffer, images and channels.
func (r *WindowReverse) output(win *tensor.Tensor) (y *tensor.Tensor, b, c int) {
	p := &r.p
	nw, t := p.Windows(), p.Window*p.Window
	if len(win.Shape) != 3 || win.Shape[1] != t || win.Shape[0]%nw != 0 {
		panic(fmt.Sprintf("nn.WindowReverse: input %v, want [B*%d,%d,C]", win.Shape, nw, t))
	}
	b, c = win.Shape[0]/nw, win.Shape[2]
	return tensor.Ensure(&p.y, b, p.H*p.W, c), b, c
}

// ForwardAdd is res + Forward(win) (res [B, H*W, C]) in the one pass of
// the reverse permutation: a Swin block's residual connection after its
// windowed attention. Backward is Forward's.
func (r *WindowReverse) ForwardAdd(win, res *tensor.Tensor) *tensor.Tensor {
	y, b, c := r.output(win)
	if !tensor.SameShape(res, y) {
		panic(fmt.Sprintf("nn.WindowReverse: residual %v for output %v", res.Shape, y.Shape))
	}
	p := &r.p
	p.res = res.Data
	p.permute(win, y, b, c, false)
	p.res = nil
	return y
}

// Backward maps dy [B, H*W, C] to the windows' gradient [B*nW, ws*ws, C].
func (r *WindowReverse) Backward(dy *tensor.Tensor) *tensor.Tensor {
	p := &r.p
	if p.y == nil || !tensor.SameShape(dy, p.y) {
		panic(fmt.Sprintf("nn.WindowReverse: gradient %v does not match the last Forward's output", dy.Shape))
	}
	b, c := p.b, p.c
	dx := tensor.Ensure(&p.dx, b*p.Windows(), p.Window*p.Window, c)
	p.permute(dy, dx, b, c, true)
	return dx
}

// ShiftMask returns the attention mask of shifted windows [nW, ws*ws,
// ws*ws] for an h x w map, built as the official code does: after the roll
// by -shift, the map's rows fall into three regions (slice(0, -ws),
// slice(-ws, -shift), slice(-shift, None)), its columns likewise; tokens i,
// j of a window from different regions were not neighbours before the
// roll, and their logit gets -100 (0 otherwise), so that softmax
// practically ignores the pair. Shift 0 needs no mask: it returns nil.
func ShiftMask(h, w, ws, shift int) *tensor.Tensor {
	checkWindows("ShiftMask", h, w, ws, shift)
	if shift == 0 {
		return nil
	}
	region := func(i, n int) int {
		switch {
		case i < n-ws:
			return 0
		case i < n-shift:
			return 1
		}
		return 2
	}
	// The mask is the region image partitioned like the tokens (without a
	// roll: the regions are defined on the rolled map).
	perm := windowPerm(h, w, ws, 0)
	t := ws * ws
	nw := h * w / t
	m := tensor.New(nw, t, t)
	id := make([]int, t)
	for win := 0; win < nw; win++ {
		for k := range id {
			q := int(perm[win*t+k])
			id[k] = region(q/w, h)*3 + region(q%w, w)
		}
		for i := 0; i < t; i++ {
			for j := 0; j < t; j++ {
				if id[i] != id[j] {
					m.Data[(win*t+i)*t+j] = -100
				}
			}
		}
	}
	return m
}
