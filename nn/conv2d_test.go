package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

type convShape struct {
	B, ci, h, w, co, k, s, p int
	tokens                   bool
}

var convShapes = []convShape{
	{2, 3, 13, 11, 5, 7, 4, 2, false}, // CSwin stem geometry
	{1, 3, 9, 9, 4, 3, 2, 1, false},
	{2, 6, 7, 6, 8, 3, 2, 1, true}, // merge geometry, odd map
	{1, 4, 6, 6, 4, 2, 2, 0, true}, // PVT spatial reduction
	{2, 5, 5, 7, 3, 3, 1, 2, true}, // padding wider than needed
	{1, 17, 4, 4, 18, 3, 2, 1, true},
}

// TestConv2d checks forward, input, weight and bias gradients of both
// input layouts against the float64 definition (PyTorch's conv2d) and its
// central differences.
func TestConv2d(t *testing.T) {
	for i, sh := range convShapes {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 21))
			cv := NewConv2d("conv", sh.ci, sh.co, sh.k, sh.s, sh.p, sh.tokens)
			x := rnd(rng, sh.B*sh.ci*sh.h*sh.w, 1)
			wt := rnd(rng, len(cv.Weight.W.Data), 0.3)
			bias := rnd(rng, sh.co, 0.3)
			set32(cv.Weight, wt)
			set32(cv.Bias, bias)
			img := x // images [B,ci,h,w]
			xt := t32(x, sh.B, sh.ci, sh.h, sh.w)
			if sh.tokens { // x holds token maps [B,h*w,ci]
				xt = t32(x, sh.B, sh.h*sh.w, sh.ci)
			}
			ref := func() []float64 {
				if sh.tokens {
					img = tokensToImages(x, sh.B, sh.h, sh.w, sh.ci)
				}
				return convRef(img, sh.B, sh.ci, sh.h, sh.w, sh.co, sh.k, sh.s, sh.p, wt, bias)
			}
			y := cv.Forward(xt, sh.h, sh.w)
			oh, ow := cv.OutSize(sh.h, sh.w)
			if !tensor.ShapeEq(y.Shape, []int{sh.B, oh * ow, sh.co}) {
				t.Fatalf("output %v, want [%d %d %d]", y.Shape, sh.B, oh*ow, sh.co)
			}
			assertClose(t, "forward", y.Data, ref(), 1e-5, 1e-5)
			R := rnd(rng, len(y.Data), 1)
			loss := func() float64 { return dotR(ref(), R) }
			dx := cv.Backward(t32(R, y.Shape...))
			checkGrad(t, "dx", rng, dx.Data, x, loss, 150, 1e-4, 1e-4)
			checkGrad(t, "dweight", rng, cv.Weight.G.Data, wt, loss, 150, 1e-4, 1e-4)
			checkGrad(t, "dbias", rng, cv.Bias.G.Data, bias, loss, 50, 1e-4, 1e-4)
			// A second backward accumulates parameter gradients.
			g0 := clone32(cv.Weight.G.Data)
			cv.Backward(t32(R, y.Shape...))
			for j := range g0 {
				if d := cv.Weight.G.Data[j] - 2*g0[j]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("second Backward: dW[%d] = %g, want 2 x %g", j, cv.Weight.G.Data[j], g0[j])
				}
			}
		})
	}
}

// TestConv2dWeightChange: a token-map conv keeps a tap-major copy of its
// weight; writes through MarkChanged (the optimizer, loads) and a Backward
// (training) must both make the next Forward use the new values.
func TestConv2dWeightChange(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	cv := NewConv2d("conv", 4, 6, 3, 2, 1, true)
	set32(cv.Weight, rnd(rng, len(cv.Weight.W.Data), 0.3))
	x := t32(rnd(rng, 2*25*4, 1), 2, 25, 4)
	y0 := clone32(cv.Forward(x, 5, 5).Data)
	for i := range cv.Weight.W.Data {
		cv.Weight.W.Data[i] *= 2
	}
	cv.Weight.MarkChanged()
	y1 := cv.Forward(x, 5, 5).Data
	for i := range y0 {
		if d := y1[i] - 2*y0[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("after MarkChanged: y[%d] = %g, want %g", i, y1[i], 2*y0[i])
		}
	}
	cv.Backward(tensor.New(2, 9, 6))
	for i := range cv.Weight.W.Data {
		cv.Weight.W.Data[i] /= 2
	}
	y2 := cv.Forward(x, 5, 5).Data
	if j := sameBits(y2, y0); j >= 0 {
		t.Fatalf("after Backward and a weight write: y[%d] = %g, want %g", j, y2[j], y0[j])
	}
}

// TestConv2dThreads: forward and every gradient bit-identical at 1, 2 and
// 4 threads (the weight gradient sums over all B*OH*OW rows).
func TestConv2dThreads(t *testing.T) {
	for _, sh := range []convShape{
		{2, 16, 28, 28, 32, 3, 2, 1, false},
		{2, 16, 28, 28, 32, 3, 2, 1, true},
		{2, 3, 32, 32, 16, 7, 4, 2, false}, // blocked (stem)
	} {
		rng := rand.New(rand.NewPCG(4, 4))
		cv := NewConv2d("conv", sh.ci, sh.co, sh.k, sh.s, sh.p, sh.tokens)
		set32(cv.Weight, rnd(rng, len(cv.Weight.W.Data), 0.1))
		set32(cv.Bias, rnd(rng, sh.co, 0.1))
		x := t32(rnd(rng, sh.B*sh.ci*sh.h*sh.w, 1), sh.B, sh.ci, sh.h, sh.w)
		if sh.tokens {
			x = x.View(sh.B, sh.h*sh.w, sh.ci)
		}
		oh, ow := cv.OutSize(sh.h, sh.w)
		dy := t32(rnd(rng, sh.B*oh*ow*sh.co, 1), sh.B, oh*ow, sh.co)
		threadInvariant(t, func() [][]float32 {
			ZeroGrads(cv.Params())
			y := clone32(cv.Forward(x, sh.h, sh.w).Data)
			dx := clone32(cv.Backward(dy).Data)
			return [][]float32{y, dx, clone32(cv.Weight.G.Data), clone32(cv.Bias.G.Data)}
		})
	}
}

func TestConv2dAllocs(t *testing.T) {
	if attnGemmAllocates() {
		t.Skip("kernels.Gemm allocates per call")
	}
	for _, sh := range []convShape{
		{2, 4, 10, 10, 8, 3, 2, 1, false},
		{2, 4, 10, 10, 8, 3, 2, 1, true},
		{2, 3, 16, 16, 8, 7, 4, 2, false}, // blocked (stem)
	} {
		cv := NewConv2d("conv", sh.ci, sh.co, sh.k, sh.s, sh.p, sh.tokens)
		x := tensor.New(sh.B, sh.ci, sh.h, sh.w)
		if sh.tokens {
			x = tensor.New(sh.B, sh.h*sh.w, sh.ci)
		}
		oh, ow := cv.OutSize(sh.h, sh.w)
		dy := tensor.New(sh.B, oh*ow, sh.co)
		cv.Forward(x, sh.h, sh.w)
		cv.Backward(dy)
		n := testing.AllocsPerRun(5, func() {
			cv.Forward(x, sh.h, sh.w)
			cv.Backward(dy)
		})
		if n > 0 {
			t.Errorf("%v: Conv2d forward+backward allocates %.1f times", sh, n)
		}
	}
}
