package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// TestLinearForward: the decode-row path gives Forward's bits, with and
// without bias, and leaves the bias in place.
func TestLinearForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, bias := range []bool{false, true} {
		l := NewLinear("l", 37, 91, bias)
		x := tensor.New(1, 1, 37)
		randFill(rng, 1, x, l.Weight.W)
		if bias {
			randFill(rng, 1, l.Bias.W)
		}
		want := l.Forward(x).Clone()
		got := LinearForward(l, x)
		for i, w := range want.Data {
			if got.Data[i] != w {
				t.Fatalf("bias %v: output %d = %g, Forward %g", bias, i, got.Data[i], w)
			}
		}
		if bias && l.Bias == nil {
			t.Fatal("bias lost")
		}
		if a := testing.AllocsPerRun(10, func() { LinearForward(l, x) }); a != 0 {
			t.Errorf("bias %v: %.0f allocations", bias, a)
		}
	}
}
