package nn

import (
	"fmt"
	"math"
	"testing"
)

func blGELU64(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }

func blMLP64(x, w1, b1, w2, b2 []float64, rows, dim, hid int) []float64 {
	h := blLinear64(x, w1, b1, rows, dim, hid)
	for i, v := range h {
		h[i] = blGELU64(v)
	}
	return blLinear64(h, w2, b2, rows, hid, dim)
}

func TestMLPGrad(t *testing.T) {
	for _, tc := range [][3]int{{1, 3, 12}, {3, 17, 5}, {17, 3, 68}, {197, 17, 64}} {
		rows, dim, hid := tc[0], tc[1], tc[2]
		t.Run(fmt.Sprintf("%dx%d_hidden%d", rows, dim, hid), func(t *testing.T) {
			m := NewMLP("mlp", dim, hid)
			m.FC1.Weight.W, m.FC1.Bias.W = blRand(1, 0.5, hid, dim), blRand(2, 0.5, hid)
			m.FC2.Weight.W, m.FC2.Bias.W = blRand(3, 0.5, dim, hid), blRand(4, 0.5, dim)
			x := blRand(5, 1, rows, dim)
			w1, b1 := blTo64(m.FC1.Weight.W.Data), blTo64(m.FC1.Bias.W.Data)
			w2, b2 := blTo64(m.FC2.Weight.W.Data), blTo64(m.FC2.Bias.W.Data)
			x64 := blTo64(x.Data)
			y := m.Forward(x)
			want := blMLP64(x64, w1, b1, w2, b2, rows, dim, hid)
			assertClose(t, "y", y.Data, want, 1e-5, 1e-5)
			dy := blRand(6, 1, rows, dim)
			dx := m.Backward(dy)
			f := func(x, w1, b1, w2, b2 []float64) float64 {
				return blDotLoss(blMLP64(x, w1, b1, w2, b2, rows, dim, hid), dy.Data)
			}
			blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 { return f(v, w1, b1, w2, b2) }, x.Data, 1e-3, 1e-4)
			blCheckGrad(t, "dfc1.weight", m.FC1.Weight.G.Data, func(v []float64) float64 { return f(x64, v, b1, w2, b2) }, m.FC1.Weight.W.Data, 1e-3, 1e-4)
			blCheckGrad(t, "dfc1.bias", m.FC1.Bias.G.Data, func(v []float64) float64 { return f(x64, w1, v, w2, b2) }, m.FC1.Bias.W.Data, 1e-3, 1e-4)
			blCheckGrad(t, "dfc2.weight", m.FC2.Weight.G.Data, func(v []float64) float64 { return f(x64, w1, b1, v, b2) }, m.FC2.Weight.W.Data, 1e-3, 1e-4)
			blCheckGrad(t, "dfc2.bias", m.FC2.Bias.G.Data, func(v []float64) float64 { return f(x64, w1, b1, w2, v) }, m.FC2.Bias.W.Data, 1e-3, 1e-4)
			// Infer (fused GELU epilogue) computes the same function.
			yi := m.Infer(x)
			assertClose(t, "Infer y", yi.Data, want, 1e-5, 1e-5)
		})
	}
}

func TestGELULayer(t *testing.T) {
	var g GELU
	x := blRand(1, 3, 5, 7)
	y := g.Forward(x)
	want := make([]float64, len(x.Data))
	for i, v := range x.Data {
		want[i] = blGELU64(float64(v))
	}
	assertClose(t, "gelu", y.Data, want, 1e-6, 1e-7)
	dy := blRand(2, 1, 5, 7)
	dx := g.Backward(dy)
	blCheckGrad(t, "gelu dx", dx.Data, func(v []float64) float64 {
		s := 0.0
		for i, e := range v {
			s += blGELU64(e) * float64(dy.Data[i])
		}
		return s
	}, x.Data, 1e-5, 1e-6)
}

// BenchmarkMLP is one ViT-Tiny MLP (192 -> 768 -> 192) on one image (197
// tokens) and on a batch of 32: training Forward+Backward and Infer.
func BenchmarkMLP(b *testing.B) {
	for _, rows := range []int{197, 6304} {
		m := NewMLP("mlp", 192, 768)
		m.FC1.Weight.W, m.FC2.Weight.W = blRand(1, 0.05, 768, 192), blRand(2, 0.05, 192, 768)
		x, dy := blRand(3, 1, rows, 192), blRand(4, 1, rows, 192)
		b.Run(fmt.Sprintf("train_%dx192", rows), func(b *testing.B) {
			for b.Loop() {
				m.Forward(x)
				m.Backward(dy)
			}
		})
		b.Run(fmt.Sprintf("infer_%dx192", rows), func(b *testing.B) {
			for b.Loop() {
				m.Infer(x)
			}
		})
	}
}
