package nn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// TestLossMatchesCrossEntropy: the in-place LM loss gives nn.CrossEntropy's
// loss and gradient (itself checked against PyTorch and float64) on rows
// wide enough to be split unevenly over the workers, with logits spread
// far enough that the target's probability underflows in float32.
func TestLossMatchesCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, threads := range []int{1, 2, 3} {
		prev := kernels.Threads()
		kernels.SetThreads(threads)
		const rows, v = 7, 1003
		x := tensor.New(rows, v)
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64() * 4)
		}
		x.Data[5*v+17] = 200 // row 5: target 3 has p ~ e^-200
		tgt := make([]int, rows)
		for i := range tgt {
			tgt[i] = rng.IntN(v)
		}
		tgt[5] = 3
		var ce nn.CrossEntropy
		want := ce.Forward(x, tgt)
		wantG := ce.Backward().Clone()
		var l nn.VocabLoss
		got := l.Forward(x, tgt)
		if math.Abs(got-want) > 1e-6*math.Abs(want) || math.IsInf(got, 0) {
			t.Errorf("threads %d: loss %.9g, want %.9g", threads, got, want)
		}
		if again := l.Forward(x, tgt); again != got {
			t.Errorf("threads %d: Forward changed the logits (%g then %g)", threads, got, again)
		}
		g := l.Backward()
		if g.Rows() != rows || g.Cols() != v || &g.Data[0] != &x.Data[0] {
			t.Fatalf("threads %d: gradient %v not in place of the logits", threads, g.Shape)
		}
		worst := 0.0
		for i, w := range wantG.Data {
			worst = math.Max(worst, math.Abs(float64(g.Data[i]-w)))
		}
		if worst > 1e-8 {
			t.Errorf("threads %d: gradient differs from nn.CrossEntropy by %.3g", threads, worst)
		}
		kernels.SetThreads(prev)
	}
}

// TestLossNoAlloc: a training step's loss allocates nothing once warm.
func TestLossNoAlloc(t *testing.T) {
	x := tensor.New(64, 500)
	tgt := make([]int, 64)
	var l nn.VocabLoss
	run := func() {
		l.Forward(x, tgt)
		l.Backward()
	}
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Errorf("loss allocates %.1f times per step", a)
	}
}
