package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

func TestDropPath(t *testing.T) {
	const b, n, c = 4000, 3, 5
	x := blRand(1, 1, b, n, c)
	d := DropPath{Rate: 0.25}
	if y := d.Forward(x, false, nil); y != x {
		t.Fatalf("eval DropPath is not the identity")
	}
	if dy := d.Backward(x); dy != x {
		t.Fatalf("eval DropPath backward is not the identity")
	}
	y := d.Forward(x, true, rand.New(rand.NewPCG(1, 2)))
	kept := 0
	for i := 0; i < b; i++ {
		s := y.Data[i*n*c] / x.Data[i*n*c]
		if math.Abs(float64(s)-1/0.75) > 1e-6 && s != 0 {
			t.Fatalf("sample %d scaled by %g, want 0 or 1/0.75", i, s)
		}
		for j := 0; j < n*c; j++ { // the whole sample shares the factor
			if math.Abs(float64(y.Data[i*n*c+j]-s*x.Data[i*n*c+j])) > 1e-6 {
				t.Fatalf("sample %d not dropped as a whole", i)
			}
		}
		if s != 0 {
			kept++
		}
	}
	if frac := float64(kept) / b; math.Abs(frac-0.75) > 0.03 {
		t.Fatalf("kept fraction %g, want 0.75", frac)
	}
	dy := blRand(2, 1, b, n, c)
	dx := d.Backward(dy)
	for i := range dx.Data {
		s := y.Data[i-i%(n*c)] / x.Data[i-i%(n*c)]
		if math.Abs(float64(dx.Data[i]-dy.Data[i]*s)) > 1e-5*math.Abs(float64(dy.Data[i])) {
			t.Fatalf("backward mask differs at %d", i)
		}
	}
	// Same seed, same masks.
	y1 := append([]float32(nil), d.Forward(x, true, rand.New(rand.NewPCG(5, 6))).Data...)
	y2 := d.Forward(x, true, rand.New(rand.NewPCG(5, 6)))
	for i := range y1 {
		if y1[i] != y2.Data[i] {
			t.Fatalf("DropPath not reproducible from the seed")
		}
	}
	all := DropPath{Rate: 1}
	for _, v := range all.Forward(x, true, rand.New(rand.NewPCG(1, 1))).Data {
		if v != 0 {
			t.Fatalf("rate 1 keeps a value")
		}
	}
}

func TestDropout(t *testing.T) {
	x := blRand(1, 1, 100, 100)
	d := Dropout{Rate: 0.1}
	y := d.Forward(x, true, rand.New(rand.NewPCG(3, 4)))
	zeros := 0
	for i, v := range y.Data {
		if v == 0 {
			zeros++
		} else if math.Abs(float64(v/x.Data[i])-1/0.9) > 1e-6 {
			t.Fatalf("survivor %d scaled by %g", i, v/x.Data[i])
		}
	}
	if f := float64(zeros) / 1e4; math.Abs(f-0.1) > 0.015 {
		t.Fatalf("dropped fraction %g", f)
	}
	dx := d.Backward(x)
	for i := range dx.Data {
		if dx.Data[i] != y.Data[i] {
			t.Fatalf("backward mask differs at %d", i)
		}
	}
	if d.Forward(x, false, nil) != x {
		t.Fatalf("eval dropout is not the identity")
	}
}

func TestMeanTokens(t *testing.T) {
	for _, sh := range [][3]int{{1, 1, 1}, {2, 197, 3}, {3, 17, 64}} {
		b, n, c := sh[0], sh[1], sh[2]
		x := blRand(1, 1, b, n, c)
		var m MeanTokens
		y := m.Forward(x)
		want := make([]float64, b*c)
		for i := 0; i < b; i++ {
			for tk := 0; tk < n; tk++ {
				for j := 0; j < c; j++ {
					want[i*c+j] += float64(x.Data[(i*n+tk)*c+j]) / float64(n)
				}
			}
		}
		assertClose(t, "mean", y.Data, want, 1e-5, 1e-6)
		dy := blRand(2, 1, b, c)
		dx := m.Backward(dy)
		if !tensor.ShapeEq(dx.Shape, x.Shape) {
			t.Fatalf("dx shape %v", dx.Shape)
		}
		blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 {
			s := 0.0
			for i := 0; i < b; i++ {
				for tk := 0; tk < n; tk++ {
					for j := 0; j < c; j++ {
						s += v[(i*n+tk)*c+j] / float64(n) * float64(dy.Data[i*c+j])
					}
				}
			}
			return s
		}, x.Data, 1e-5, 1e-6)
	}
}
