package nn

import (
	"github.com/slabml/slab/tensor"

	"fmt"
	"math"
	"testing"
)

// TestLinearNormVisionSchedule walks a T = 4 vision schedule call by call:
// lambda_n = (T-(n-1))/T for n <= T+1, then 0; BN statistics update from the
// first call (lambda 1) on; eval is pure RepBN and leaves the counters.
func TestLinearNormVisionSchedule(t *testing.T) {
	const c, rows, T = 17, 9, 4
	ln := NewLinearNorm("n", NewLayerNorm("n.norm1", c, 1e-6), NewRepBN("n.norm2", c, 1e-5, 1, 1), 0, T)
	x := blRand(1, 1, rows, c)
	want := []float64{1, 0.75, 0.5, 0.25, 0, 0, 0}
	for n, lam := range want {
		if got := ln.Lambda(); got != lam {
			t.Fatalf("call %d: Lambda() = %g, want %g", n+1, got, lam)
		}
		y := ln.Forward(x, Train)
		// Check the mix against the two norms run separately on fresh copies.
		y1 := blLayerNorm64(blTo64(x.Data), blTo64(ln.Norm1.(*LayerNorm).Weight.W.Data), blTo64(ln.Norm1.(*LayerNorm).Bias.W.Data), rows, c, 1e-6)
		y2, _, _ := blRepBN64(blTo64(x.Data), blTo64(ln.Norm2.BN.Weight.W.Data), blTo64(ln.Norm2.BN.Bias.W.Data), 1, nil, nil, rows, c, 1e-5, true)
		mix := make([]float64, len(y1))
		for i := range mix {
			mix[i] = lam*y1[i] + (1-lam)*y2[i]
		}
		assertClose(t, fmt.Sprintf("call %d output", n+1), y.Data, mix, 1e-5, 1e-5)
		if got := ln.Norm2.BN.NumBatchesTracked; got != int64(n+1) {
			t.Fatalf("call %d: BN num_batches_tracked %d, want %d (stats update at every call)", n+1, got, n+1)
		}
		if wantIter := int64(max(T-(n+1), 0)); ln.Iter != wantIter || ln.TotalStep != T || ln.Warm != 0 || ln.NumStep != 0 {
			t.Fatalf("after call %d: iter %d (want %d) total %d warm %d num_step %d", n+1, ln.Iter, wantIter, ln.TotalStep, ln.Warm, ln.NumStep)
		}
	}
	// Eval: RepBN with running statistics, counters unchanged.
	iter, bnCount := ln.Iter, ln.Norm2.BN.NumBatchesTracked
	ye := append([]float32(nil), ln.Forward(x, Eval).Data...)
	yr := ln.Norm2.Forward(x, Eval)
	assertClose(t, "eval = RepBN eval", ye, blTo64(yr.Data), 0, 0)
	if ln.Iter != iter || ln.Norm2.BN.NumBatchesTracked != bnCount {
		t.Fatalf("eval moved the schedule or the BN statistics")
	}
	// Counters are buffers with the official names.
	var names []string
	for _, b := range ln.Buffers() {
		names = append(names, b.Name)
		if b.Name == "n.iter" && *b.I != 0 {
			t.Fatalf("n.iter buffer = %d", *b.I)
		}
	}
	if got := fmt.Sprint(names); got != "[n.warm n.iter n.total_step n.norm2.bn.running_mean n.norm2.bn.running_var n.norm2.bn.num_batches_tracked]" {
		t.Fatalf("buffers %s", got)
	}
}

// TestLinearNormWarm: with warm > 0 (vision) the first calls are Norm1
// alone and leave BN untouched; the schedule starts afterwards.
func TestLinearNormWarm(t *testing.T) {
	const c = 3
	ln := NewLinearNorm("n", NewLayerNorm("n.norm1", c, 1e-6), NewRepBN("n.norm2", c, 1e-5, 1, 1), 2, 2)
	x := blRand(2, 1, 5, c)
	for call, lam := range []float64{1, 1, 1, 0.5, 0} {
		if got := ln.Lambda(); got != lam {
			t.Fatalf("call %d: Lambda %g, want %g", call+1, got, lam)
		}
		y := append([]float32(nil), ln.Forward(x, Train).Data...)
		if call < 2 {
			y1 := ln.Norm1.Forward(x, Train)
			assertClose(t, "warm output = norm1", y, blTo64(y1.Data), 0, 0)
			if ln.Norm2.BN.NumBatchesTracked != 0 {
				t.Fatalf("warm call %d touched BN", call+1)
			}
		}
	}
	if ln.Warm != 0 || ln.Iter != 0 || ln.Norm2.BN.NumBatchesTracked != 3 {
		t.Fatalf("warm %d iter %d bn count %d", ln.Warm, ln.Iter, ln.Norm2.BN.NumBatchesTracked)
	}
}

// TestLinearNormLLaMASchedule checks docs/method.md 6.1 with warm 2, step 3:
// counters move only on calls with num_step%16 == 0, num_step cycles mod 16.
func TestLinearNormLLaMASchedule(t *testing.T) {
	const c = 4
	ln := NewLinearNormLLaMA("m", NewRMSNorm("m.norm1", c, 1e-6), NewRepBN("m.norm2", c, 1e-6, 0, 0), 2, 3)
	x := blRand(3, 1, 6, c)
	// Expected lambda of call n (1-based), -1 for warm-up. warm ticks down
	// at calls 1 and 17 (num_step 0); from call 18 the mix runs with
	// lambda = iter/3 taken before the decrement, and iter ticks down at
	// calls 33, 49, 65.
	expect := func(n int) float64 {
		switch {
		case n <= 17:
			return -1
		case n <= 33:
			return 1
		case n <= 49:
			return 2.0 / 3
		case n <= 65:
			return 1.0 / 3
		}
		return 0
	}
	bnCalls := int64(0)
	for n := 1; n <= 100; n++ {
		want := expect(n)
		lam := ln.Lambda()
		if want < 0 {
			if ln.Warm == 0 || lam != 1 {
				t.Fatalf("call %d: expected warm-up, warm %d lambda %g", n, ln.Warm, lam)
			}
		} else if math.Abs(lam-want) > 1e-15 || ln.Warm != 0 {
			t.Fatalf("call %d: lambda %g, want %g (warm %d iter %d num_step %d)", n, lam, want, ln.Warm, ln.Iter, ln.NumStep)
		}
		ln.Forward(x, Train)
		if want >= 0 {
			bnCalls++
		}
		if ln.Norm2.BN.NumBatchesTracked != bnCalls {
			t.Fatalf("call %d: BN count %d, want %d", n, ln.Norm2.BN.NumBatchesTracked, bnCalls)
		}
		if ln.NumStep != int64(n%16) {
			t.Fatalf("call %d: num_step %d, want %d", n, ln.NumStep, n%16)
		}
	}
	var names []string
	for _, b := range ln.Buffers()[:4] {
		names = append(names, b.Name)
	}
	if got := fmt.Sprint(names); got != "[m.num_step m.warm m.iter m.total_step]" {
		t.Fatalf("LLaMA buffers %s", got)
	}
}

// TestLinearNormGrad differentiates the mix at lambda = 0.75 (and the pure
// RepBN phase) against float64 finite differences of the formula.
func TestLinearNormGrad(t *testing.T) {
	for _, sh := range [][2]int{{3, 17}, {17, 3}, {197, 17}} {
		for _, calls := range []int{2, 6} { // lambda 0.75, then 0
			rows, c := sh[0], sh[1]
			t.Run(fmt.Sprintf("%dx%d_call%d", rows, c, calls), func(t *testing.T) {
				const T = 4
				ln1 := NewLayerNorm("n.norm1", c, 1e-6)
				rb := NewRepBN("n.norm2", c, 1e-5, 0.8, 1)
				ln := NewLinearNorm("n", ln1, rb, 0, T)
				ln1.Weight.W, ln1.Bias.W = blRand(1, 0.5, c), blRand(2, 0.5, c)
				rb.BN.Weight.W, rb.BN.Bias.W = blRand(3, 0.5, c), blRand(4, 0.5, c)
				x := blRand(5, 2, rows, c)
				for i := 1; i < calls; i++ {
					ln.Forward(x, Train)
				}
				lam := ln.Lambda()
				ZeroGrads(ln.Params())
				y := ln.Forward(x, Train)
				ref := func(x, w1, b1, g, b []float64, a float64) []float64 {
					y1 := blLayerNorm64(x, w1, b1, rows, c, 1e-6)
					y2, _, _ := blRepBN64(x, g, b, a, nil, nil, rows, c, 1e-5, true)
					for i := range y1 {
						y1[i] = lam*y1[i] + (1-lam)*y2[i]
					}
					return y1
				}
				x64 := blTo64(x.Data)
				w1, b1 := blTo64(ln1.Weight.W.Data), blTo64(ln1.Bias.W.Data)
				g, b := blTo64(rb.BN.Weight.W.Data), blTo64(rb.BN.Bias.W.Data)
				assertClose(t, "y", y.Data, ref(x64, w1, b1, g, b, 0.8), 1e-5, 1e-5)
				dy := blRand(6, 1, rows, c)
				dx := ln.Backward(dy)
				blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 { return blDotLoss(ref(v, w1, b1, g, b, 0.8), dy.Data) }, x.Data, 1e-3, 2e-4)
				blCheckGrad(t, "dnorm1.weight", ln1.Weight.G.Data, func(v []float64) float64 { return blDotLoss(ref(x64, v, b1, g, b, 0.8), dy.Data) }, ln1.Weight.W.Data, 1e-4, 1e-4)
				blCheckGrad(t, "dnorm1.bias", ln1.Bias.G.Data, func(v []float64) float64 { return blDotLoss(ref(x64, w1, v, g, b, 0.8), dy.Data) }, ln1.Bias.W.Data, 1e-4, 1e-4)
				blCheckGrad(t, "dnorm2.bn.weight", rb.BN.Weight.G.Data, func(v []float64) float64 { return blDotLoss(ref(x64, w1, b1, v, b, 0.8), dy.Data) }, rb.BN.Weight.W.Data, 1e-4, 1e-4)
				blCheckGrad(t, "dnorm2.bn.bias", rb.BN.Bias.G.Data, func(v []float64) float64 { return blDotLoss(ref(x64, w1, b1, g, v, 0.8), dy.Data) }, rb.BN.Bias.W.Data, 1e-4, 1e-4)
				blCheckGrad(t, "dnorm2.alpha", rb.Alpha.G.Data, func(v []float64) float64 { return blDotLoss(ref(x64, w1, b1, g, b, v[0]), dy.Data) }, rb.Alpha.W.Data, 1e-4, 1e-3)
			})
		}
	}
}

// BenchmarkNorms times one ViT-Tiny norm (197 or 6304 tokens x 192) per
// kind, Forward+Backward in training and Forward in eval.
func BenchmarkNorms(b *testing.B) {
	const c = 192
	for _, rows := range []int{197, 6304} {
		x, dy := blRand(1, 1, rows, c), blRand(2, 1, rows, c)
		mk := map[string]func() Norm{
			"LayerNorm": func() Norm { return NewLayerNorm("n", c, 1e-6) },
			"RepBN":     func() Norm { return NewRepBN("n", c, 1e-5, 1, 1) },
			"LinearNormMix": func() Norm {
				return NewLinearNorm("n", NewLayerNorm("n.norm1", c, 1e-6), NewRepBN("n.norm2", c, 1e-5, 1, 1), 0, 1<<40)
			},
		}
		for _, name := range []string{"LayerNorm", "RepBN", "LinearNormMix"} {
			n := mk[name]()
			b.Run(fmt.Sprintf("%s_train_%dx%d", name, rows, c), func(b *testing.B) {
				for b.Loop() {
					n.Forward(x, Train)
					n.Backward(dy)
				}
			})
			b.Run(fmt.Sprintf("%s_eval_%dx%d", name, rows, c), func(b *testing.B) {
				for b.Loop() {
					n.Forward(x, Eval)
				}
			})
		}
	}
}

// TestLinearNormIdentityBranch: a Norm1 whose Backward returns its input
// (Identity) must not be overwritten by the second branch's scaling.
func TestLinearNormIdentityBranch(t *testing.T) {
	const rows, c = 5, 3
	rb := NewRepBN("n.norm2", c, 1e-5, 0.5, 1)
	ln := NewLinearNorm("n", Identity{}, rb, 0, 4)
	x := blRand(1, 1, rows, c)
	ln.Forward(x, Train) // lambda 1
	lam := ln.Lambda()   // 0.75
	ln.Forward(x, Train)
	dy := blRand(2, 1, rows, c)
	dx := ln.Backward(dy)
	g, b := blTo64(rb.BN.Weight.W.Data), blTo64(rb.BN.Bias.W.Data)
	blCheckGrad(t, "dx", dx.Data, func(v []float64) float64 {
		y2, _, _ := blRepBN64(v, g, b, 0.5, nil, nil, rows, c, 1e-5, true)
		for i := range y2 {
			y2[i] = lam*v[i] + (1-lam)*y2[i]
		}
		return blDotLoss(y2, dy.Data)
	}, x.Data, 1e-3, 1e-4)
}

// TestNormBackwardAdd: every norm's BackwardAdd(dy, res) is its Backward(dy)
// plus res, bit for bit, with the same parameter gradients (LayerNorm,
// RepBN, BatchNorm, and LinearNorm in its warm-up, mixed and RepBN-only
// phases), and NormBackwardAdd falls back to Backward + add for Identity.
func TestNormBackwardAdd(t *testing.T) {
	const rows, c = 37, 19
	mk := map[string]func() Norm{
		"LayerNorm": func() Norm { return NewLayerNorm("n", c, 1e-6) },
		"RepBN":     func() Norm { return NewRepBN("n", c, 1e-5, 0.7, 1) },
		"BatchNorm": func() Norm { return NewBatchNorm("n", c, 1e-5, 0.1) },
		"LinearNorm": func() Norm {
			return NewLinearNorm("n", NewLayerNorm("n.norm1", c, 1e-6), NewRepBN("n.norm2", c, 1e-5, 0.7, 1), 1, 3)
		},
		"Identity": func() Norm { return Identity{} },
		"RMSNorm":  func() Norm { return NewRMSNorm("n", c, 1e-6) },
		// The LLaMA PRepBN: its warm phase runs RMSNorm, which has no fused
		// BackwardAdd (this once dereferenced the nil residual).
		"LinearNormRMS": func() Norm {
			return NewLinearNorm("n", NewRMSNorm("n.norm1", c, 1e-6), NewRepBN("n.norm2", c, 1e-5, 0.7, 1), 1, 3)
		},
	}
	x, dy, res := blRand(1, 2, rows, c), blRand(2, 1, rows, c), blRand(3, 1, rows, c)
	for name, f := range mk {
		for call := 1; call <= 5; call++ { // LinearNorm: warm, lambda 1, 2/3, 1/3, 0
			// Without a residual: the plain input gradient.
			a0, b0 := f(), f()
			for i := 0; i < call; i++ {
				a0.Forward(x, Train)
				b0.Forward(x, Train)
			}
			want0 := append([]float32(nil), a0.Backward(dy).Data...)
			var buf0 *tensor.Tensor
			got0 := NormBackwardAdd(b0, dy, nil, &buf0)
			for i := range want0 {
				if got0.Data[i] != want0[i] {
					t.Fatalf("%s call %d, no residual: dx differs at %d: %g vs %g", name, call, i, got0.Data[i], want0[i])
				}
			}
			a, b := f(), f()
			for i, p := range a.Params() {
				for j := range p.W.Data {
					v := float32(0.9 + 0.01*float64((i*7+j)%13))
					p.W.Data[j], b.Params()[i].W.Data[j] = v, v
				}
			}
			for i := 0; i < call; i++ {
				a.Forward(x, Train)
				b.Forward(x, Train)
			}
			want := append([]float32(nil), a.Backward(dy).Data...)
			for i := range want {
				want[i] += res.Data[i]
			}
			var buf *tensor.Tensor
			got := NormBackwardAdd(b, dy, res, &buf)
			for i := range want {
				if got.Data[i] != want[i] {
					t.Fatalf("%s call %d: dx+res differs at %d: %g vs %g", name, call, i, got.Data[i], want[i])
				}
			}
			for i, p := range a.Params() {
				for j, g := range p.G.Data {
					if b.Params()[i].G.Data[j] != g {
						t.Fatalf("%s call %d: gradient of %s differs", name, call, p.Name)
					}
				}
			}
		}
	}
}
