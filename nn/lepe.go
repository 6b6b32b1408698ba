package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// LePE is CSwin's locally-enhanced positional encoding (docs/method.md
// 3.2-3.3, the official `get_v`): a 3x3 depthwise convolution with bias
// over all C channels of V, zero padding at the border of each map, added
// to the attention output. CSwin runs it on each stripe's own map (so the
// stripe borders are zero-padded too) and, in its SLA stages, on the
// whole map after SLA's own DWC.
//
// It works on maps where they lie: a batch of maps, each h x w positions
// of C channels (channels-last, row stride ld, map stride s), read from V
// inside a qkv or window buffer and added into the attention output, so
// nothing is transposed (kernels.DWConvCL). Forward and the input gradient
// split (map, row) across threads. The weight and bias gradients are summed
// per map into a [maps, 10C] scratch and then over maps in order
// (kernels.ColSums), so they do not depend on the thread count.
type LePE struct {
	Weight, Bias *Param // [C,1,3,3], [C]
	C            int

	out, v          []float32 // operands of the last Forward, not owned
	ldo, so         int
	ldv, sv         int
	maps, h, w      int
	wt, part, sum   *tensor.Tensor
	dout, dv        []float32
	shp             []int
	fwdFn, dxFn, dW func(lo, hi int)
}

// lepeK is LePE's kernel size.
const lepeK = 3

// NewLePE builds name.weight [c,1,3,3] and name.bias [c] (zeros; models
// initialise them), e.g. name = "stage3.0.attns.0.get_v".
func NewLePE(name string, c int) *LePE {
	if c < 1 {
		panic(fmt.Sprintf("nn.NewLePE(%s): %d channels", name, c))
	}
	return &LePE{
		Weight: NewParam(name+".weight", false, c, 1, lepeK, lepeK),
		Bias:   NewParam(name+".bias", true, c),
		C:      c,
	}
}

func (l *LePE) check(what string, s []float32, ld, stride int) {
	if ld < l.C || len(s) < (l.maps-1)*stride+(l.h*l.w-1)*ld+l.C {
		panic(fmt.Sprintf("nn.LePE(%s): %s has %d values, too few for %d maps of %dx%d x %d channels (stride %d, row stride %d)",
			l.Weight.Name, what, len(s), l.maps, l.h, l.w, l.C, stride, ld))
	}
}

// Forward adds LePE(v) to out for maps maps of h x w positions: map i's V
// starts at v[i*sv] (row stride ldv) and its output at out[i*so] (row
// stride ldo). v is kept for Backward.
func (l *LePE) Forward(out []float32, ldo, so int, v []float32, ldv, sv int, maps, h, w int) {
	if maps < 1 || h < 1 || w < 1 {
		panic(fmt.Sprintf("nn.LePE(%s): %d maps of %dx%d", l.Weight.Name, maps, h, w))
	}
	if l.fwdFn == nil {
		l.fwdFn, l.dxFn, l.dW = l.fwdTask, l.dxTask, l.dWTask
	}
	l.maps, l.h, l.w = maps, h, w
	l.check("output", out, ldo, so)
	l.check("V", v, ldv, sv)
	l.out, l.ldo, l.so, l.v, l.ldv, l.sv = out, ldo, so, v, ldv, sv
	wt := ensureDims(&l.wt, &l.shp, lepeK*lepeK, l.C)
	kernels.DWWeightTapMajor(wt.Data, l.Weight.W.Data, l.C, lepeK)
	kernels.ParallelFor(maps*h, 1, l.fwdFn)
}

func (l *LePE) fwdTask(lo, hi int) {
	for t := lo; t < hi; t++ {
		m, y := t/l.h, t%l.h
		kernels.DWConvCL(l.out[m*l.so:], l.ldo, l.v[m*l.sv:], l.ldv, l.h, l.w, l.C, lepeK, l.wt.Data, l.Bias.W.Data, y, y+1, true)
	}
}

// Backward adds the input gradient into dv (laid out as Forward's v) from
// dout (laid out as Forward's out) and accumulates the weight and bias
// gradients.
func (l *LePE) Backward(dv, dout []float32) {
	if l.v == nil {
		panic(fmt.Sprintf("nn.LePE(%s): Backward before Forward", l.Weight.Name))
	}
	l.check("V gradient", dv, l.ldv, l.sv)
	l.check("output gradient", dout, l.ldo, l.so)
	l.dv, l.dout = dv, dout
	kernels.ParallelFor(l.maps*l.h, 1, l.dxFn)
	// Per-map sums [tap-major weight 9C | bias C], then over maps in order.
	kd := (lepeK*lepeK + 1) * l.C
	part := ensureDims(&l.part, &l.shp, l.maps, kd)
	clear(part.Data)
	kernels.ParallelFor(l.maps, 1, l.dW)
	sum := ensureDims(&l.sum, &l.shp, kd)
	clear(sum.Data)
	kernels.ColSums(sum.Data, part.Data, l.maps, kd)
	kernels.DWWeightAddChannelMajor(l.Weight.G.Data, sum.Data, l.C, lepeK)
	g := l.Bias.G.Data
	for ch, v := range sum.Data[lepeK*lepeK*l.C:] {
		g[ch] += v
	}
}

func (l *LePE) dxTask(lo, hi int) {
	for t := lo; t < hi; t++ {
		m, y := t/l.h, t%l.h
		kernels.DWConvCLBackwardInput(l.dv[m*l.sv:], l.ldv, l.dout[m*l.so:], l.ldo, l.h, l.w, l.C, lepeK, l.wt.Data, y, y+1, true)
	}
}

func (l *LePE) dWTask(lo, hi int) {
	kk := lepeK * lepeK * l.C
	for m := lo; m < hi; m++ {
		p := l.part.Data[m*(kk+l.C) : (m+1)*(kk+l.C)]
		kernels.DWConvCLBackwardWeight(p[:kk], p[kk:], l.v[m*l.sv:], l.ldv, l.dout[m*l.so:], l.ldo, l.h, l.w, l.C, lepeK, 0, l.h)
	}
}

// Params lists weight and bias.
func (l *LePE) Params() []*Param { return []*Param{l.Weight, l.Bias} }

// Buffers is empty.
func (l *LePE) Buffers() []*Buffer { return nil }
