package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/tensor"
)

// patchMergeRef is the official gather written literally: x viewed
// [B, H, W, C]; x0 = x[:, 0::2, 0::2], x1 = x[:, 1::2, 0::2],
// x2 = x[:, 0::2, 1::2], x3 = x[:, 1::2, 1::2]; cat on channels; view
// [B, H/2*W/2, 4C].
func patchMergeRef(x []float64, B, H, W, C int) []float64 {
	var out []float64
	at := func(b, i, j int) []float64 { o := ((b*H+i)*W + j) * C; return x[o : o+C] }
	for b := 0; b < B; b++ {
		for i := 0; i < H/2; i++ {
			for j := 0; j < W/2; j++ {
				out = append(out, at(b, 2*i, 2*j)...)   // x0
				out = append(out, at(b, 2*i+1, 2*j)...) // x1
				out = append(out, at(b, 2*i, 2*j+1)...) // x2
				out = append(out, at(b, 2*i+1, 2*j+1)...)
			}
		}
	}
	return out
}

func TestPatchMerge(t *testing.T) {
	for i, sh := range []struct{ B, H, W, C int }{{1, 2, 2, 1}, {2, 4, 6, 3}, {3, 8, 8, 5}, {1, 14, 14, 4}} {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 41))
			x := swRand(rng, sh.B*sh.H*sh.W*sh.C, 0, 1)
			m := NewPatchMerge(sh.H, sh.W)
			y := m.Forward(swTensor(x, sh.B, sh.H*sh.W, sh.C))
			if want := []int{sh.B, sh.H / 2 * sh.W / 2, 4 * sh.C}; !tensor.ShapeEq(y.Shape, want) {
				t.Fatalf("shape %v, want %v", y.Shape, want)
			}
			assertClose(t, "y", y.Data, patchMergeRef(x, sh.B, sh.H, sh.W, sh.C), 0, 0)
			dyv := swRand(rng, len(x), 0, 1)
			dx := m.Backward(swTensor(dyv, y.Shape...))
			k := min(len(x), 50)
			want := make([]float64, k)
			for j := range want {
				want[j] = numGrad(func([]float64) float64 { return swDot(patchMergeRef(x, sh.B, sh.H, sh.W, sh.C), dyv) }, x[j:j+1], 0.5)[0]
			}
			assertClose(t, "dx vs finite differences", dx.Data[:k], want, 1e-12, 1e-12)
		})
	}
	m := NewPatchMerge(8, 8)
	x := tensor.New(2, 64, 8)
	m.Backward(m.Forward(x))
	if a := testing.AllocsPerRun(5, func() { m.Backward(m.Forward(x)) }); a > 0 {
		t.Errorf("PatchMerge steady state allocates %.1f times", a)
	}
}
