package nn

import (
	"fmt"
	"math"
	"testing"
)

// blShapes are the row x channel shapes every norm is checked on: odd
// sizes, a single row and a single channel.
var blShapes = [][2]int{{1, 3}, {3, 1}, {3, 17}, {17, 3}, {17, 64}, {197, 17}, {197, 64}}

func blLayerNorm64(x, w, b []float64, rows, c int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		xr := x[r*c : r*c+c]
		var m, v float64
		for _, e := range xr {
			m += e
		}
		m /= float64(c)
		for _, e := range xr {
			v += (e - m) * (e - m)
		}
		v /= float64(c)
		s := math.Sqrt(v + eps)
		for j, e := range xr {
			y[r*c+j] = (e-m)/s*w[j] + b[j]
		}
	}
	return y
}

func blRMSNorm64(x, w []float64, rows, c int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		xr := x[r*c : r*c+c]
		var ss float64
		for _, e := range xr {
			ss += e * e
		}
		s := math.Sqrt(ss/float64(c) + eps)
		for j, e := range xr {
			y[r*c+j] = e / s * w[j]
		}
	}
	return y
}

func TestLayerNormGrad(t *testing.T) {
	for _, sh := range blShapes {
		rows, c := sh[0], sh[1]
		t.Run(fmt.Sprintf("%dx%d", rows, c), func(t *testing.T) {
			const eps = 1e-6
			l := NewLayerNorm("ln", c, eps)
			l.Weight.W = blRand(1, 0.5, c)
			l.Bias.W = blRand(2, 0.5, c)
			x := blRand(3, 2, rows, c)
			for i := range x.Data {
				x.Data[i] += 0.5 // a nonzero mean
			}
			w64, b64 := blTo64(l.Weight.W.Data), blTo64(l.Bias.W.Data)
			y := l.Forward(x, Train)
			assertClose(t, "y", y.Data, blLayerNorm64(blTo64(x.Data), w64, b64, rows, c, eps), 1e-5, 1e-5)
			// Forward copies x: overwriting the caller's x must not change Backward.
			xs := x.Clone()
			for i := range x.Data {
				x.Data[i] = 99
			}
			dy := blRand(4, 1, rows, c)
			dx := l.Backward(dy)
			// The C = 1 LayerNorm output is constant, so its gradient is 0
			// analytically but finite differences of (x-m)/sqrt(var+eps)
			// are round-off only; the absolute tolerance covers that.
			blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 { return blDotLoss(blLayerNorm64(v, w64, b64, rows, c, eps), dy.Data) }, xs.Data, 1e-3, 2e-4)
			blCheckGrad(t, "dweight", l.Weight.G.Data, func(v []float64) float64 {
				return blDotLoss(blLayerNorm64(blTo64(xs.Data), v, b64, rows, c, eps), dy.Data)
			}, l.Weight.W.Data, 1e-4, 1e-4)
			blCheckGrad(t, "dbias", l.Bias.G.Data, func(v []float64) float64 {
				return blDotLoss(blLayerNorm64(blTo64(xs.Data), w64, v, rows, c, eps), dy.Data)
			}, l.Bias.W.Data, 1e-4, 1e-4)
		})
	}
}

func TestRMSNormGrad(t *testing.T) {
	for _, sh := range blShapes {
		rows, c := sh[0], sh[1]
		t.Run(fmt.Sprintf("%dx%d", rows, c), func(t *testing.T) {
			const eps = 1e-6
			r := NewRMSNorm("rms", c, eps)
			r.Weight.W = blRand(1, 0.5, c)
			x := blRand(3, 2, rows, c)
			w64 := blTo64(r.Weight.W.Data)
			y := r.Forward(x, Train)
			assertClose(t, "y", y.Data, blRMSNorm64(blTo64(x.Data), w64, rows, c, eps), 1e-5, 1e-5)
			dy := blRand(4, 1, rows, c)
			dx := r.Backward(dy)
			blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 { return blDotLoss(blRMSNorm64(v, w64, rows, c, eps), dy.Data) }, x.Data, 1e-3, 1e-4)
			blCheckGrad(t, "dweight", r.Weight.G.Data, func(v []float64) float64 {
				return blDotLoss(blRMSNorm64(blTo64(x.Data), v, rows, c, eps), dy.Data)
			}, r.Weight.W.Data, 1e-4, 1e-4)
		})
	}
}
