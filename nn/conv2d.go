package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Conv2d is a general 2-D convolution with bias, groups 1 (PyTorch's
// nn.Conv2d(in, out, k, stride, padding)): CSwin's stem (7x7 stride 4 pad
// 2, 3 -> 64) and stage merges (3x3 stride 2 pad 1, C -> 2C), and PVT's
// spatial reduction (kernel = stride = sr; docs/method.md 3.3, 4.2, 4.4).
// The output is always a token map [B, OH*OW, Out] in row-major pixel
// order (PyTorch's conv(x).flatten(2).transpose(1, 2)). The input is
// either images [B, In, H, W] (Tokens false: the stem) or token maps
// [B, H*W, In] (Tokens true: merges and spatial reduction read the
// residual stream as it lies, with no transpose).
//
// Design (nn/patchembed.go's, generalised to overlapping, padded windows):
// im2col into cols [B*OH*OW, In*k*k], then one GEMM cols·Wᵀ with the bias
// in its epilogue, already token-major. Token maps unfold as (ky, kx,
// channel) so each tap is one contiguous copy; the GEMM then needs the
// weight in that order, a tap-major copy [Out, k*k*In] rebuilt when the
// weight changes (as Linear's packed weight: MarkChanged or a Backward
// invalidates it). Images with a stride (the stem) are first cut into
// s x s blocks (kernels.SpaceToDepth) so that their unfold copies runs of
// In·s² values instead of k: a stride-1 convolution of ceil(k/s)² blocks
// whose extra taps meet zero weights (the stem: depth 192 instead of 147,
// ~30 % more GEMM work for an unfold that cost more than the GEMM).
// Backward: dW = dyᵀ·cols, db = column sums of dy, and
// dx = col2im(dy·W), written as a gather per input row; each is a GEMM or a
// reduction whose summation order does not depend on the thread count.
type Conv2d struct {
	Weight, Bias                 *Param // [Out, In, K, K], [Out]
	In, Out, Kernel, Stride, Pad int
	// Tokens selects the input layout: [B, H*W, In] token maps, else
	// [B, In, H, W] images.
	Tokens bool
	// NoInputGrad makes Backward skip the input gradient and return nil
	// (a network's input image needs none).
	NoInputGrad bool

	x                *tensor.Tensor
	b, h, w, oh, ow  int
	col, out         *tensor.Tensor
	dcol, dx         *tensor.Tensor
	wt, dwt          *tensor.Tensor // weight in the unfolded order and its gradient (token maps, blocked images)
	blk              *tensor.Tensor // blocked images (see blocked)
	kb, gbh, gbw     int
	wtOK             bool
	wtVer            uint64
	wtData           *float32
	shp              []int
	im2colFn, col2im func(lo, hi int)
	blockFn          func(lo, hi int)
}

// NewConv2d builds name.weight [out,in,k,k] and name.bias [out] (zeros;
// models initialise them).
func NewConv2d(name string, in, out, kernel, stride, pad int, tokens bool) *Conv2d {
	if in < 1 || out < 1 || kernel < 1 || stride < 1 || pad < 0 {
		panic(fmt.Sprintf("nn.NewConv2d(%s): in %d out %d kernel %d stride %d pad %d", name, in, out, kernel, stride, pad))
	}
	return &Conv2d{
		Weight: NewParam(name+".weight", false, out, in, kernel, kernel),
		Bias:   NewParam(name+".bias", true, out),
		In:     in, Out: out, Kernel: kernel, Stride: stride, Pad: pad, Tokens: tokens,
	}
}

// OutSize returns the output map size for an h x w input.
func (c *Conv2d) OutSize(h, w int) (oh, ow int) {
	return kernels.ConvOutSize(h, c.Kernel, c.Stride, c.Pad), kernels.ConvOutSize(w, c.Kernel, c.Stride, c.Pad)
}

// Forward maps x, images [B,In,h,w] or token maps [B,h*w,In] (see Tokens),
// to tokens [B, OH*OW, Out]. For images h and w must match x's shape.
func (c *Conv2d) Forward(x *tensor.Tensor, h, w int) *tensor.Tensor {
	ok := len(x.Shape) == 4 && x.Shape[1] == c.In && x.Shape[2] == h && x.Shape[3] == w
	if c.Tokens {
		ok = len(x.Shape) == 3 && x.Shape[1] == h*w && x.Shape[2] == c.In
	}
	oh, ow := c.OutSize(h, w)
	if !ok || oh < 1 || ow < 1 {
		want := fmt.Sprintf("[B,%d,%d,%d]", c.In, h, w)
		if c.Tokens {
			want = fmt.Sprintf("[B,%d*%d,%d]", h, w, c.In)
		}
		panic(fmt.Sprintf("nn.Conv2d(%s): input %v for a %dx%d map, want %s with the %dx%d kernel fitting", c.Weight.Name, x.Shape, h, w, want, c.Kernel, c.Kernel))
	}
	if c.im2colFn == nil {
		c.im2colFn, c.col2im, c.blockFn = c.im2colTask, c.col2imTask, c.blockTask
	}
	c.x, c.b, c.h, c.w, c.oh, c.ow = x, x.Shape[0], h, w, oh, ow
	rows := c.b * oh * ow
	gk := c.depth()
	col := ensureDims(&c.col, &c.shp, rows, gk)
	out := ensureDims(&c.out, &c.shp, c.b, oh*ow, c.Out)
	if c.blocked() {
		c.kb = (c.Kernel + c.Stride - 1) / c.Stride
		c.gbh, c.gbw = oh+c.kb-1, ow+c.kb-1
		ensureDims(&c.blk, &c.shp, c.b, c.gbh*c.gbw, c.In*c.Stride*c.Stride)
		kernels.ParallelFor(c.b*c.gbh, 1, c.blockFn)
	}
	kernels.ParallelFor(c.b*oh, 1, c.im2colFn)
	kernels.GemmEpilogue(false, true, rows, c.Out, gk, col.Data, gk, c.weight(), gk, out.Data, c.Out,
		kernels.Epilogue{Bias: c.Bias.W.Data})
	return out
}

// blocked reports whether images are unfolded through s x s blocks: a
// stride above 1 and at most 50 % more GEMM depth than the plain unfold.
func (c *Conv2d) blocked() bool {
	if c.Tokens || c.Stride == 1 {
		return false
	}
	kb := (c.Kernel + c.Stride - 1) / c.Stride
	return 2*kb*kb*c.Stride*c.Stride <= 3*c.Kernel*c.Kernel
}

// depth is the GEMM depth: In·k², or ceil(k/s)²·In·s² when blocked.
func (c *Conv2d) depth() int {
	if c.blocked() {
		kb := (c.Kernel + c.Stride - 1) / c.Stride
		return kb * kb * c.In * c.Stride * c.Stride
	}
	return c.In * c.Kernel * c.Kernel
}

func (c *Conv2d) blockTask(lo, hi int) {
	cb := c.In * c.Stride * c.Stride
	for t := lo; t < hi; t++ {
		b, by := t/c.gbh, t%c.gbh
		kernels.SpaceToDepth(c.blk.Data[b*c.gbh*c.gbw*cb:], c.x.Data[b*c.In*c.h*c.w:(b+1)*c.In*c.h*c.w],
			c.In, c.h, c.w, c.Stride, c.Pad, c.gbw, by, by+1)
	}
}

// forEachTap calls f(i, j) for every weight element: i its index in
// PyTorch's [In, k, k] order, j its column in the unfolded order (token
// maps: (ky, kx, channel); blocked images: (block y, block x, channel, y,
// x) within ceil(k/s)² blocks of s x s).
func (c *Conv2d) forEachTap(f func(i, j int)) {
	k, s := c.Kernel, c.Stride
	for ch := 0; ch < c.In; ch++ {
		for ky := 0; ky < k; ky++ {
			for kx := 0; kx < k; kx++ {
				i := (ch*k+ky)*k + kx
				if c.Tokens {
					f(i, (ky*k+kx)*c.In+ch)
					continue
				}
				f(i, (((ky/s)*c.kb+kx/s)*c.In+ch)*s*s+(ky%s)*s+kx%s)
			}
		}
	}
}

// weight returns W in the column order of the unfolded input: PyTorch's
// (channel, ky, kx) for plain images, else forEachTap's.
func (c *Conv2d) weight() []float32 {
	if !c.Tokens && !c.blocked() {
		return c.Weight.W.Data
	}
	W := c.Weight
	if !c.wtOK || c.wtVer != W.Version() || c.wtData != &W.W.Data[0] {
		kd, gk := c.In*c.Kernel*c.Kernel, c.depth()
		wt := ensureDims(&c.wt, &c.shp, c.Out, gk)
		clear(wt.Data) // blocked: taps beyond k stay zero
		if c.Tokens {
			// [In, k²] -> [k², In] per output channel.
			kk := c.Kernel * c.Kernel
			for o := 0; o < c.Out; o++ {
				kernels.TransposeScale(wt.Data[o*gk:(o+1)*gk], c.In, W.W.Data[o*kd:(o+1)*kd], kk, c.In, kk, 1)
			}
		} else {
			for o := 0; o < c.Out; o++ {
				src, dst := W.W.Data[o*kd:(o+1)*kd], wt.Data[o*gk:(o+1)*gk]
				c.forEachTap(func(i, j int) { dst[j] = src[i] })
			}
		}
		c.wtOK, c.wtVer, c.wtData = true, W.Version(), &W.W.Data[0]
	}
	return c.wt.Data
}

func (c *Conv2d) im2colTask(lo, hi int) {
	gk := c.depth()
	n := c.oh * c.ow
	for t := lo; t < hi; t++ {
		b, oy := t/c.oh, t%c.oh
		col := c.col.Data[b*n*gk:]
		switch {
		case c.Tokens:
			kernels.Im2ColCL(col, c.x.Data[b*c.h*c.w*c.In:], c.In, c.In, c.h, c.w, c.Kernel, c.Stride, c.Pad, oy, oy+1)
		case c.blocked():
			cb := c.In * c.Stride * c.Stride
			kernels.Im2ColCL(col, c.blk.Data[b*c.gbh*c.gbw*cb:], cb, cb, c.gbh, c.gbw, c.kb, 1, 0, oy, oy+1)
		default:
			kernels.Im2Col(col, c.x.Data[b*c.In*c.h*c.w:], c.In, c.h, c.w, c.Kernel, c.Stride, c.Pad, oy, oy+1)
		}
	}
}

// Backward accumulates the weight and bias gradients from dy [B,OH*OW,Out]
// and returns dx in the input's layout (nil with NoInputGrad).
func (c *Conv2d) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if c.x == nil {
		panic(fmt.Sprintf("nn.Conv2d(%s): Backward before Forward", c.Weight.Name))
	}
	if !tensor.SameShape(dy, c.out) {
		panic(fmt.Sprintf("nn.Conv2d(%s): gradient %v, want %v", c.Weight.Name, dy.Shape, c.out.Shape))
	}
	// Training: an optimizer step follows, so the tap-major copy (still
	// current for this pass) is rebuilt by the next Forward.
	c.wtOK = false
	rows, gk := c.col.Shape[0], c.col.Shape[1]
	kd := c.In * c.Kernel * c.Kernel
	if c.Tokens || c.blocked() {
		// dW in the unfolded order, then added into PyTorch's.
		dwt := ensureDims(&c.dwt, &c.shp, c.Out, gk)
		kernels.Gemm(true, false, c.Out, gk, rows, 1, dy.Data, c.Out, c.col.Data, gk, 0, dwt.Data, gk)
		if c.Tokens {
			// [k², In] -> [In, k²] per output channel (into dcol, free
			// until the input gradient), then one add.
			kk := c.Kernel * c.Kernel
			tmp := ensureDims(&c.dcol, &c.shp, c.Out, kd)
			for o := 0; o < c.Out; o++ {
				kernels.TransposeScale(tmp.Data[o*kd:(o+1)*kd], kk, dwt.Data[o*gk:(o+1)*gk], c.In, kk, c.In, 1)
			}
			kernels.AddTo(c.Weight.G.Data, tmp.Data)
		} else {
			for o := 0; o < c.Out; o++ {
				src, dst := dwt.Data[o*gk:(o+1)*gk], c.Weight.G.Data[o*kd:(o+1)*kd]
				c.forEachTap(func(i, j int) { dst[i] += src[j] })
			}
		}
	} else {
		kernels.Gemm(true, false, c.Out, kd, rows, 1, dy.Data, c.Out, c.col.Data, kd, 1, c.Weight.G.Data, kd)
	}
	kernels.ColSums(c.Bias.G.Data, dy.Data, rows, c.Out)
	if c.NoInputGrad {
		return nil
	}
	// dcol in the order Col2Im/Col2ImCL read: PyTorch's for images
	// (blocked or not), tap-major for token maps.
	dcol := ensureDims(&c.dcol, &c.shp, rows, kd)
	w := c.Weight.W.Data
	if c.Tokens {
		w = c.wt.Data
	}
	kernels.Gemm(false, false, rows, kd, c.Out, 1, dy.Data, c.Out, w, kd, 0, dcol.Data, kd)
	ensureDims(&c.dx, &c.shp, c.x.Shape...)
	kernels.ParallelFor(c.b*c.h, 1, c.col2im)
	return c.dx
}

func (c *Conv2d) col2imTask(lo, hi int) {
	kd := c.In * c.Kernel * c.Kernel
	n := c.oh * c.ow
	for t := lo; t < hi; t++ {
		b, y := t/c.h, t%c.h
		dcol := c.dcol.Data[b*n*kd : (b+1)*n*kd]
		if c.Tokens {
			kernels.Col2ImCL(c.dx.Data[b*c.h*c.w*c.In:], c.In, dcol, c.In, c.h, c.w, c.Kernel, c.Stride, c.Pad, y, y+1)
		} else {
			kernels.Col2Im(c.dx.Data[b*c.In*c.h*c.w:(b+1)*c.In*c.h*c.w], dcol, c.In, c.h, c.w, c.Kernel, c.Stride, c.Pad, y, y+1)
		}
	}
}

// Params lists weight and bias.
func (c *Conv2d) Params() []*Param { return []*Param{c.Weight, c.Bias} }

// Buffers is empty.
func (c *Conv2d) Buffers() []*Buffer { return nil }
