package nn_test

// The Swin layers against our PyTorch reference
// (tools/reference/swin_reference.py, fixtures testdata/reference/swin_*,
// computed in float64 and stored as float32).
//
// Tolerances: the window permutations, the mask, the index and the patch
// merging gather move values without arithmetic and must match exactly.
// The rest is normwise (reftest): outputs 1e-5 of the largest output,
// gradients 1e-4 of the largest gradient, the same rule and reasoning as
// reference_test.go (a wrong scale, offset, bias index or mask row moves
// results by 1e-3 or more; float32 accumulation stays near 1e-6).

import (
	"fmt"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/tools/reference/reftest"
)

var (
	swinExact   = reftest.Tol{}
	swinFwdTol  = reftest.Tol{Rel: 1e-5}
	swinGradTol = reftest.Tol{Rel: 1e-4, Abs: 1e-7}
)

// swinLoad copies param/<prefix-trimmed name> of f into ps and zeroes the
// gradients; trim is the Go-side prefix that the fixture's names lack.
func swinLoad(t *testing.T, f *reftest.Fixture, ps []*nn.Param, trim string) {
	t.Helper()
	for _, p := range ps {
		want := f.T("param/" + p.Name[len(trim):])
		if want.Size() != p.W.Size() {
			t.Fatalf("%s: shape %v, fixture %v", p.Name, p.W.Shape, want.Shape)
		}
		copy(p.W.Data, want.Data)
		p.G.Zero()
	}
}

func swinGrads(t *testing.T, f *reftest.Fixture, ps []*nn.Param, trim string) {
	t.Helper()
	for _, p := range ps {
		reftest.CloseT(t, "d"+p.Name[len(trim):], p.G, f.T("grad/"+p.Name[len(trim):]), swinGradTol)
	}
}

func int32sAsTensor(v []int32) *tensor.Tensor {
	t := tensor.New(len(v))
	for i, x := range v {
		t.Data[i] = float32(x)
	}
	return t
}

func TestReferenceSwinWindows(t *testing.T) {
	f := reftest.Load(t, "swin_window")
	H, W := int(f.Num("H")), int(f.Num("W"))
	x := f.T("x")
	for _, c := range []struct{ ws, s int }{{4, 0}, {4, 2}, {2, 1}} {
		key := fmt.Sprintf("w%ds%d/", c.ws, c.s)
		t.Run(key, func(t *testing.T) {
			p := nn.NewWindowPartition(H, W, c.ws, c.s)
			r := nn.NewWindowReverse(H, W, c.ws, c.s)
			win := p.Forward(x)
			reftest.CloseT(t, "windows (roll -s, window_partition)", win, f.T(key+"windows"), swinExact)
			reftest.CloseT(t, "reverse (window_reverse, roll +s)", r.Forward(win), f.T(key+"reverse"), swinExact)
			reftest.CloseT(t, "dx", p.Backward(f.T(key+"dy")), f.T(key+"dx"), swinExact)
			if m := nn.ShiftMask(H, W, c.ws, c.s); m != nil {
				reftest.CloseT(t, "attn_mask", m, f.T(key+"mask"), swinExact)
			} else if f.Has(key + "mask") {
				t.Error("the reference has a mask for an unshifted block")
			}
			reftest.CloseT(t, "relative_position_index", int32sAsTensor(nn.RelPosIndex(c.ws)),
				f.T(key+"relative_position_index"), swinExact)
		})
	}
}

func TestReferenceSwinRelPos(t *testing.T) {
	f := reftest.Load(t, "swin_relpos")
	r := nn.NewRelPosBias("L", int(f.Num("window")), int(f.Num("heads")))
	swinLoad(t, f, r.Params(), "L.")
	reftest.CloseT(t, "relative_position_index", int32sAsTensor(r.Index), f.T("buffer/relative_position_index"), swinExact)
	x := f.T("x").Clone()
	reftest.CloseT(t, "y", r.Forward(x), f.T("y"), swinFwdTol)
	reftest.CloseT(t, "dx", r.Backward(f.T("dy")), f.T("dx"), swinExact)
	swinGrads(t, f, r.Params(), "L.")
}

func TestReferenceSwinWindowAttention(t *testing.T) {
	for _, s := range []int{0, 2} {
		t.Run(fmt.Sprint("shift", s), func(t *testing.T) {
			f := reftest.Load(t, fmt.Sprintf("swin_window_attention_s%d", s))
			a := nn.NewWindowAttention("L.attn", int(f.Num("dim")), int(f.Num("heads")), int(f.Num("window")), true)
			swinLoad(t, f, a.Params(), "L.")
			mask := nn.ShiftMask(int(f.Num("H")), int(f.Num("W")), int(f.Num("window")), s)
			if mask != nil {
				reftest.CloseT(t, "mask", mask, f.T("mask"), swinExact)
			}
			reftest.CloseT(t, "y", a.Forward(f.T("x"), mask), f.T("y"), swinFwdTol)
			reftest.CloseT(t, "dx", a.Backward(f.T("dy")), f.T("dx"), swinGradTol)
			swinGrads(t, f, a.Params(), "L.")
		})
	}
}

func TestReferenceSwinPatchMerge(t *testing.T) {
	f := reftest.Load(t, "swin_patch_merge")
	m := nn.NewPatchMerge(int(f.Num("H")), int(f.Num("W")))
	reftest.CloseT(t, "y", m.Forward(f.T("x")), f.T("y"), swinExact)
	reftest.CloseT(t, "dx", m.Backward(f.T("dy")), f.T("dx"), swinExact)
}

// TestReferenceSwinPatchMerging composes the official PatchMerging from
// the gather, a LayerNorm over 4C and the reduction Linear(4C -> 2C, no
// bias), as a model will.
func TestReferenceSwinPatchMerging(t *testing.T) {
	f := reftest.Load(t, "swin_patch_merging")
	c := int(f.Num("C"))
	m := nn.NewPatchMerge(int(f.Num("H")), int(f.Num("W")))
	norm := newTestLN("L.norm", 4*c, float32(f.Num("ln_eps")))
	red := nn.NewLinear("L.reduction", 4*c, 2*c, false)
	ps := append([]*nn.Param{norm.w, norm.b}, red.Params()...)
	swinLoad(t, f, ps, "L.")
	reftest.CloseT(t, "y", red.Forward(norm.forward(m.Forward(f.T("x")))), f.T("y"), swinFwdTol)
	reftest.CloseT(t, "dx", m.Backward(norm.backward(red.Backward(f.T("dy")))), f.T("dx"), swinGradTol)
	swinGrads(t, f, ps, "L.")
}

func TestReferenceSwinFocused(t *testing.T) {
	f := reftest.Load(t, "swin_focused")
	a := nn.NewFocusedLinearAttention("L", int(f.Num("dim")), int(f.Num("heads")), int(f.Num("h")), int(f.Num("w")),
		int(f.Num("kernel")), int(f.Num("focusing")), true)
	swinLoad(t, f, a.Params(), "L.")
	reftest.CloseT(t, "y", a.Forward(f.T("x")), f.T("y"), swinFwdTol)
	reftest.CloseT(t, "dx", a.Backward(f.T("dy")), f.T("dx"), swinGradTol)
	swinGrads(t, f, a.Params(), "L.")
}

// testLN is a LayerNorm written on the kernels directly, so that this
// test does not depend on nn's norm interface (models build their norms
// through a factory).
type testLN struct {
	w, b       *nn.Param
	eps        float32
	x, y, dx   *tensor.Tensor
	mean, rstd []float32
	rows, c    int
}

func newTestLN(name string, c int, eps float32) *testLN {
	return &testLN{w: nn.NewParam(name+".weight", true, c), b: nn.NewParam(name+".bias", true, c), eps: eps}
}

func (l *testLN) forward(x *tensor.Tensor) *tensor.Tensor {
	l.x, l.rows, l.c = x, x.Rows(), x.Cols()
	l.y = tensor.New(x.Shape...)
	l.mean, l.rstd = make([]float32, l.rows), make([]float32, l.rows)
	kernels.LayerNormForward(l.y.Data, l.mean, l.rstd, x.Data, l.w.W.Data, l.b.W.Data, l.rows, l.c, l.eps)
	return l.y
}

func (l *testLN) backward(dy *tensor.Tensor) *tensor.Tensor {
	l.dx = tensor.New(dy.Shape...)
	kernels.LayerNormBackward(l.dx.Data, l.w.G.Data, l.b.G.Data, dy.Data, l.x.Data, l.mean, l.rstd, l.w.W.Data, l.rows, l.c)
	return l.dx
}

// swinBlock composes the layers as a Swin block does (the model-level
// design of models/swin): x + reverse(attn(partition(norm1(x)))), then
// + mlp(norm2(.)).
type swinBlock struct {
	norm1, norm2 *testLN
	part         *nn.WindowPartition
	rev          *nn.WindowReverse
	attn         *nn.WindowAttention
	mlp          *nn.MLP
	mask         *tensor.Tensor
}

func newSwinBlock(name string, dim, heads, H, W, ws, shift int, eps float32) *swinBlock {
	return &swinBlock{
		norm1: newTestLN(name+".norm1", dim, eps), norm2: newTestLN(name+".norm2", dim, eps),
		part: nn.NewWindowPartition(H, W, ws, shift), rev: nn.NewWindowReverse(H, W, ws, shift),
		attn: nn.NewWindowAttention(name+".attn", dim, heads, ws, true),
		mlp:  nn.NewMLP(name+".mlp", dim, 4*dim), mask: nn.ShiftMask(H, W, ws, shift),
	}
}

func (b *swinBlock) params() []*nn.Param {
	ps := []*nn.Param{b.norm1.w, b.norm1.b}
	ps = append(ps, b.attn.Params()...)
	ps = append(ps, b.norm2.w, b.norm2.b)
	return append(ps, b.mlp.Params()...)
}

func addT(a, b *tensor.Tensor) *tensor.Tensor {
	y := tensor.New(a.Shape...)
	kernels.Add(y.Data, a.Data, b.Data)
	return y
}

func (b *swinBlock) forward(x *tensor.Tensor) *tensor.Tensor {
	h := addT(x, b.rev.Forward(b.attn.Forward(b.part.Forward(b.norm1.forward(x)), b.mask)))
	return addT(h, b.mlp.Forward(b.norm2.forward(h)))
}

func (b *swinBlock) backward(dy *tensor.Tensor) *tensor.Tensor {
	dh := addT(dy, b.norm2.backward(b.mlp.Backward(dy)))
	return addT(dh, b.norm1.backward(b.part.Backward(b.attn.Backward(b.rev.Backward(dh)))))
}

// TestReferenceSwinBlockPair runs two Swin blocks (shift 0, then the
// shifted one with its mask) built from the nn layers against the
// reference's official SwinTransformerBlock pair: the target the
// models/swin tests will share.
func TestReferenceSwinBlockPair(t *testing.T) {
	f := reftest.Load(t, "swin_block_pair")
	dim, heads, ws := int(f.Num("dim")), int(f.Num("heads")), int(f.Num("window"))
	H, W, eps := int(f.Num("H")), int(f.Num("W")), float32(f.Num("ln_eps"))
	blocks := []*swinBlock{
		newSwinBlock("L.blocks.0", dim, heads, H, W, ws, 0, eps),
		newSwinBlock("L.blocks.1", dim, heads, H, W, ws, ws/2, eps),
	}
	var ps []*nn.Param
	for _, b := range blocks {
		ps = append(ps, b.params()...)
	}
	swinLoad(t, f, ps, "L.")
	reftest.CloseT(t, "blocks.1.attn_mask", blocks[1].mask, f.T("buffer/blocks.1.attn_mask"), swinExact)
	y := f.T("x")
	for _, b := range blocks {
		y = b.forward(y)
	}
	reftest.CloseT(t, "y", y, f.T("y"), swinFwdTol)
	dx := f.T("dy")
	for i := len(blocks) - 1; i >= 0; i-- {
		dx = blocks[i].backward(dx)
	}
	reftest.CloseT(t, "dx", dx, f.T("dx"), swinGradTol)
	swinGrads(t, f, ps, "L.")
}
