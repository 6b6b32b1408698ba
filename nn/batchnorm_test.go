package nn

import (
	"fmt"
	"math"
	"testing"
)

// blRepBN64 is RepBN (alpha*x + BN) from docs/method.md 1.1 in float64; with
// train it uses the batch statistics of x and returns them, else rm/rv.
func blRepBN64(x, gamma, beta []float64, alpha float64, rm, rv []float64, rows, c int, eps float64, train bool) (y, mean, vr []float64) {
	y = make([]float64, len(x))
	mean, vr = make([]float64, c), make([]float64, c)
	for j := 0; j < c; j++ {
		if train {
			for r := 0; r < rows; r++ {
				mean[j] += x[r*c+j]
			}
			mean[j] /= float64(rows)
			for r := 0; r < rows; r++ {
				d := x[r*c+j] - mean[j]
				vr[j] += d * d
			}
			vr[j] /= float64(rows)
		} else {
			mean[j], vr[j] = rm[j], rv[j]
		}
		s := math.Sqrt(vr[j] + eps)
		for r := 0; r < rows; r++ {
			y[r*c+j] = gamma[j]*(x[r*c+j]-mean[j])/s + beta[j] + alpha*x[r*c+j]
		}
	}
	return y, mean, vr
}

func TestBatchNormRepBNGrad(t *testing.T) {
	for _, kind := range []string{"bn", "repbn"} {
		for _, train := range []bool{true, false} {
			for _, sh := range blShapes {
				rows, c := sh[0], sh[1]
				if train && rows == 1 {
					continue // one row: a degenerate batch (PyTorch refuses it)
				}
				t.Run(fmt.Sprintf("%s_train%v_%dx%d", kind, train, rows, c), func(t *testing.T) {
					const eps = 1e-5
					var l Norm
					var bn *BatchNorm
					alpha := 0.0
					if kind == "bn" {
						bn = NewBatchNorm("bn", c, eps, 0.1)
						l = bn
					} else {
						rb := NewRepBN("rb", c, eps, 0.7, 1)
						bn, alpha = rb.BN, 0.7
						l = rb
					}
					bn.Weight.W = blRand(1, 0.5, c)
					bn.Bias.W = blRand(2, 0.5, c)
					rm0 := blRand(5, 0.3, c)
					rv0 := blRand(6, 0.3, c)
					for j := range rv0.Data {
						rv0.Data[j] = 0.5 + rv0.Data[j]*rv0.Data[j]
					}
					copy(bn.RunningMean.Data, rm0.Data)
					copy(bn.RunningVar.Data, rv0.Data)
					x := blRand(3, 2, rows, c)
					for i := range x.Data {
						x.Data[i] += 3 // channel means far from 0
					}
					g64, b64 := blTo64(bn.Weight.W.Data), blTo64(bn.Bias.W.Data)
					rm64, rv64 := blTo64(rm0.Data), blTo64(rv0.Data)
					ref := func(x, g, b []float64, a float64) []float64 {
						y, _, _ := blRepBN64(x, g, b, a, rm64, rv64, rows, c, eps, train)
						return y
					}
					y := l.Forward(x, ModeOf(train))
					want, mean, vr := blRepBN64(blTo64(x.Data), g64, b64, alpha, rm64, rv64, rows, c, eps, train)
					assertClose(t, "y", y.Data, want, 1e-5, 1e-5)

					// Running statistics: momentum 0.1, unbiased variance.
					wantRM, wantRV := make([]float64, c), make([]float64, c)
					var wantN int64
					for j := 0; j < c; j++ {
						wantRM[j], wantRV[j] = rm64[j], rv64[j]
						if train {
							wantRM[j] = 0.9*rm64[j] + 0.1*mean[j]
							wantRV[j] = 0.9*rv64[j] + 0.1*vr[j]*float64(rows)/float64(rows-1)
						}
					}
					if train {
						wantN = 1
					}
					assertClose(t, "running_mean", bn.RunningMean.Data, wantRM, 1e-6, 1e-6)
					assertClose(t, "running_var", bn.RunningVar.Data, wantRV, 1e-5, 1e-6)
					if bn.NumBatchesTracked != wantN {
						t.Fatalf("num_batches_tracked = %d, want %d", bn.NumBatchesTracked, wantN)
					}

					xs := x.Clone()
					if train { // a training Forward keeps its own copy
						for i := range x.Data {
							x.Data[i] = -7
						}
					}
					dy := blRand(4, 1, rows, c)
					dx := l.Backward(dy)
					blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 { return blDotLoss(ref(v, g64, b64, alpha), dy.Data) }, xs.Data, 1e-3, 2e-4)
					blCheckGrad(t, "dgamma", bn.Weight.G.Data, func(v []float64) float64 {
						return blDotLoss(ref(blTo64(xs.Data), v, b64, alpha), dy.Data)
					}, bn.Weight.W.Data, 1e-4, 1e-4)
					blCheckGrad(t, "dbeta", bn.Bias.G.Data, func(v []float64) float64 {
						return blDotLoss(ref(blTo64(xs.Data), g64, v, alpha), dy.Data)
					}, bn.Bias.W.Data, 1e-4, 1e-4)
					if rb, ok := l.(*RepBN); ok {
						blCheckGrad(t, "dalpha", rb.Alpha.G.Data, func(v []float64) float64 {
							return blDotLoss(ref(blTo64(xs.Data), g64, b64, v[0]), dy.Data)
						}, rb.Alpha.W.Data, 1e-4, 1e-4)
					}
				})
			}
		}
	}
}

// TestRepBNAffine checks the eval-mode fold of docs/method.md 2.1 against the eval
// forward, and ForwardStats against a training forward's statistics.
func TestRepBNAffine(t *testing.T) {
	const c, rows = 17, 33
	r := NewRepBN("norm", c, 1e-5, 0.6, 1)
	r.BN.Weight.W = blRand(1, 1, c)
	r.BN.Bias.W = blRand(2, 1, c)
	x := blRand(3, 2, rows, c)
	r.Forward(x, Train)
	rm := append([]float32(nil), r.BN.RunningMean.Data...)
	rv := append([]float32(nil), r.BN.RunningVar.Data...)

	s := NewRepBN("norm", c, 1e-5, 0.6, 1)
	s.ForwardStats(x)
	for j := 0; j < c; j++ {
		if s.BN.RunningMean.Data[j] != rm[j] || s.BN.RunningVar.Data[j] != rv[j] {
			t.Fatalf("ForwardStats channel %d: running %g/%g, training forward %g/%g", j, s.BN.RunningMean.Data[j], s.BN.RunningVar.Data[j], rm[j], rv[j])
		}
	}
	if s.BN.NumBatchesTracked != 1 {
		t.Fatalf("ForwardStats: num_batches_tracked %d", s.BN.NumBatchesTracked)
	}

	y := r.Forward(x, Eval)
	a, b := r.Affine()
	want := make([]float64, rows*c)
	for i := range want {
		j := i % c
		want[i] = float64(a[j])*float64(x.Data[i]) + float64(b[j])
	}
	assertClose(t, "a*x+b vs eval forward", y.Data, want, 1e-5, 1e-5)
	ab, bb := r.BN.Affine()
	for j := range a {
		if math.Abs(float64(a[j]-ab[j])-0.6) > 1e-6 || b[j] != bb[j] {
			t.Fatalf("RepBN.Affine = BN.Affine + alpha fails at %d", j)
		}
	}
	names := []string{}
	for _, p := range r.Params() {
		names = append(names, p.Name)
	}
	for _, b := range r.Buffers() {
		names = append(names, b.Name)
	}
	if got := fmt.Sprint(names); got != "[norm.alpha norm.bn.weight norm.bn.bias norm.bn.running_mean norm.bn.running_var norm.bn.num_batches_tracked]" {
		t.Fatalf("names %s", got)
	}
}
