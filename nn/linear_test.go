package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

func blLinear64(x, w, b []float64, rows, in, out int) []float64 {
	y := make([]float64, rows*out)
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[o*in+i]
			}
			y[r*out+o] = s
		}
	}
	return y
}

func TestLinear(t *testing.T) {
	cases := []struct {
		shape []int // input shape, last = in
		out   int
		bias  bool
	}{
		{[]int{1, 1}, 1, true}, {[]int{3, 3}, 17, true}, {[]int{17, 64}, 3, false},
		{[]int{2, 197, 17}, 64, true}, {[]int{197, 64}, 64, true},
	}
	for _, tc := range cases {
		in := tc.shape[len(tc.shape)-1]
		t.Run(fmt.Sprintf("%v_out%d_bias%v", tc.shape, tc.out, tc.bias), func(t *testing.T) {
			l := NewLinear("fc", in, tc.out, tc.bias)
			l.Weight.W = blRand(1, 0.3, tc.out, in)
			if tc.bias {
				l.Bias.W = blRand(2, 0.3, tc.out)
				Fill(l.Bias.G, 0.25) // gradients accumulate
			}
			x := blRand(3, 1, tc.shape...)
			rows := x.Rows()
			y := l.Forward(x)
			wantShape := append(append([]int(nil), tc.shape[:len(tc.shape)-1]...), tc.out)
			if !tensor.ShapeEq(y.Shape, wantShape) {
				t.Fatalf("output shape %v, want %v", y.Shape, wantShape)
			}
			var b64 []float64
			if tc.bias {
				b64 = blTo64(l.Bias.W.Data)
			}
			w64 := blTo64(l.Weight.W.Data)
			assertClose(t, "y", y.Data, blLinear64(blTo64(x.Data), w64, b64, rows, in, tc.out), 1e-5, 1e-5)

			dy := blRand(4, 1, y.Shape...)
			dx := l.Backward(dy)
			blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 { return blDotLoss(blLinear64(v, w64, b64, rows, in, tc.out), dy.Data) }, x.Data, 1e-4, 1e-4)
			blCheckGrad(t, "dW", l.Weight.G.Data, func(v []float64) float64 {
				return blDotLoss(blLinear64(blTo64(x.Data), v, b64, rows, in, tc.out), dy.Data)
			}, l.Weight.W.Data, 1e-4, 1e-4)
			if tc.bias {
				gb := append([]float32(nil), l.Bias.G.Data...)
				for i := range gb {
					gb[i] -= 0.25
				}
				blCheckGrad(t, "db", gb, func(v []float64) float64 {
					return blDotLoss(blLinear64(blTo64(x.Data), w64, v, rows, in, tc.out), dy.Data)
				}, l.Bias.W.Data, 1e-4, 1e-4)
			}
		})
	}
}

// TestLinearPrepack checks the packed weight: bit-identical to the
// unpacked GEMM, never stale after MarkChanged or a replaced weight
// tensor, off after a Backward (training) and after Unpack.
func TestLinearPrepack(t *testing.T) {
	const rows, in, out = 197, 64, 100
	l := NewLinear("fc", in, out, true)
	l.Weight.W = blRand(1, 0.3, out, in)
	l.Bias.W = blRand(2, 0.3, out)
	x := blRand(3, 1, rows, in)
	check := func(step string, packed bool) {
		t.Helper()
		y := l.Forward(x)
		w := make([]float32, rows*out)
		kernels.GemmEpilogue(false, true, rows, out, in, x.Data, in, l.Weight.W.Data, in, w, out, kernels.Epilogue{Bias: l.Bias.W.Data})
		for i := range w {
			if math.Float32bits(y.Data[i]) != math.Float32bits(w[i]) {
				t.Fatalf("%s: y[%d] = %g, want %g", step, i, y.Data[i], w[i])
			}
		}
		if got := l.Weight.lin.valid; got != packed {
			t.Fatalf("%s: packed = %v, want %v", step, got, packed)
		}
	}
	scale := func(f float32) {
		for i := range l.Weight.W.Data {
			l.Weight.W.Data[i] *= f
		}
	}
	check("before Prepack", false)
	Prepack(l)
	check("after Prepack", true)
	check("again", true)
	// A checkpoint load: in place, announced with MarkChanged.
	scale(-2)
	l.Weight.MarkChanged()
	check("after MarkChanged", true)
	// A new weight tensor.
	l.Weight.W = blRand(5, 0.3, out, in)
	check("after replacing W", true)
	// Training: Backward turns packing off, then the optimizer writes W.
	l.Backward(blRand(4, 1, rows, out))
	scale(0.5)
	check("after a training step", false)
	check("after a training step, again", false)
	Prepack(l)
	check("after Prepack again", true)
	Unpack(l)
	check("after Unpack", false)
	// One row is a GEMV on W as stored.
	Prepack(l)
	l.Forward(blRand(6, 1, 1, in))
	if l.Weight.lin.valid {
		t.Fatal("a single-row forward packed the weight")
	}
	// Steady-state packed evaluation allocates nothing.
	l.Forward(x)
	if n := testing.AllocsPerRun(10, func() { l.Forward(x) }); n != 0 {
		t.Fatalf("packed Forward allocates %.1f times", n)
	}
}
