package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/slabml/slab/tensor"
)

// relPosIndexRef builds relative_position_index literally as the official
// code: coords = stack(meshgrid(arange(w), arange(w))) flattened to
// [2, w²], relative = coords[:, :, None] - coords[:, None, :], shifted by
// w-1, the row offset multiplied by 2w-1, summed.
func relPosIndexRef(w int) []int32 {
	n := w * w
	var cy, cx []int
	for i := 0; i < w; i++ {
		for j := 0; j < w; j++ {
			cy, cx = append(cy, i), append(cx, j)
		}
	}
	idx := make([]int32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			ry, rx := cy[i]-cy[j]+w-1, cx[i]-cx[j]+w-1
			ry *= 2*w - 1
			idx[i*n+j] = int32(ry + rx)
		}
	}
	return idx
}

func TestRelPosIndex(t *testing.T) {
	// Window 2, printed by the official code.
	want2 := []int32{4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4}
	if got := RelPosIndex(2); !slices.Equal(got, want2) {
		t.Fatalf("RelPosIndex(2) = %v, want %v", got, want2)
	}
	for _, w := range []int{1, 3, 4, 7, 12} {
		if !slices.Equal(RelPosIndex(w), relPosIndexRef(w)) {
			t.Fatalf("RelPosIndex(%d) differs from the official construction", w)
		}
	}
	if got := RelPosIndex(7); got[0] != 84 || slices.Max(got) != 168 {
		t.Fatalf("window 7: index[0][0] = %d (want 84, the centre of 169), max %d (want 168)", got[0], slices.Max(got))
	}
}

// relPosRef adds table[index[i][j]][h] to logits [B,h,N,N] in float64.
func relPosRef(logits, table []float64, idx []int32, B, h, n int) []float64 {
	out := slices.Clone(logits)
	for b := 0; b < B; b++ {
		for hh := 0; hh < h; hh++ {
			for ij, k := range idx {
				out[(b*h+hh)*n*n+ij] += table[int(k)*h+hh]
			}
		}
	}
	return out
}

func TestRelPosBias(t *testing.T) {
	for i, c := range []struct{ B, w, h int }{{1, 2, 1}, {3, 2, 2}, {4, 3, 3}, {2, 7, 2}} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 21))
			n := c.w * c.w
			r := NewRelPosBias("blk.attn", c.w, c.h)
			if want := []int{(2*c.w - 1) * (2*c.w - 1), c.h}; !tensor.ShapeEq(r.Table.W.Shape, want) {
				t.Fatalf("table shape %v, want %v", r.Table.W.Shape, want)
			}
			if r.Table.Name != "blk.attn.relative_position_bias_table" || !r.Table.NoDecay {
				t.Fatalf("table %q (NoDecay %v): want blk.attn.relative_position_bias_table without weight decay", r.Table.Name, r.Table.NoDecay)
			}
			table := swRand(rng, len(r.Table.W.Data), 0, 0.5)
			copy(r.Table.W.Data, swTensor(table, len(table)).Data)
			logits := swRand(rng, c.B*c.h*n*n, 0, 1)
			dyv := swRand(rng, len(logits), 0, 1)
			y := r.Forward(swTensor(logits, c.B, c.h, n, n))
			assertClose(t, "logits + bias", y.Data, relPosRef(logits, table, r.Index, c.B, c.h, n), 1e-7, 0)
			dx := r.Backward(swTensor(dyv, c.B, c.h, n, n))
			assertClose(t, "dlogits pass through", dx.Data, dyv, 0, 0)
			want := numGrad(func(tab []float64) float64 {
				return swDot(relPosRef(logits, tab, r.Index, c.B, c.h, n), dyv)
			}, table, 1e-3)
			assertClose(t, "dtable vs finite differences", r.Table.G.Data, want, 1e-5, 1e-6)
		})
	}
}

// TestRelPosBiasThreadInvariant checks that the table gradient, a scatter
// with many (window, i, j) per entry, has the same bits on 1 and 2
// threads.
func TestRelPosBiasThreadInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	r := NewRelPosBias("a", 7, 3)
	g := swTensor(swRand(rng, 64*3*49*49, 0, 1), 64, 3, 49, 49)
	var runs [][]float32
	for _, th := range []int{1, 2} {
		swWithThreads(th, func() {
			r.Table.G.Zero()
			r.Backward(g)
			runs = append(runs, slices.Clone(r.Table.G.Data))
		})
	}
	if !slices.Equal(runs[0], runs[1]) {
		t.Fatal("relative position bias gradient differs between 1 and 2 threads")
	}
}
