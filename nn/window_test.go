package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Helpers shared by the Swin layer tests (window, relpos, window
// attention, patch merge, focused attention).

// swRand returns n normal values (mean, std) rounded to float32, so that a
// float64 reference sees exactly what the float32 layer sees.
func swRand(rng *rand.Rand, n int, mean, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(float32(mean + std*rng.NormFloat64()))
	}
	return x
}

// swTensor returns a float32 tensor of the given shape holding v.
func swTensor(v []float64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i, x := range v {
		t.Data[i] = float32(x)
	}
	return t
}

// swDot is Σ a_i·b_i, the loss whose gradient the checks take.
func swDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// swWithThreads runs f with kernels.SetThreads(n) and restores the count.
func swWithThreads(n int, f func()) {
	old := kernels.Threads()
	kernels.SetThreads(n)
	defer kernels.SetThreads(old)
	f()
}

// rollPartitionRef is the official pair of operations written literally:
// shifted = torch.roll(x, (-s, -s), (1, 2)), then window_partition
// (view [B, H/ws, ws, W/ws, ws, C], permute (0, 1, 3, 2, 4, 5)).
func rollPartitionRef(x []float64, B, H, W, C, ws, s int) []float64 {
	shifted := make([]float64, len(x))
	for b := 0; b < B; b++ {
		for i := 0; i < H; i++ {
			for j := 0; j < W; j++ {
				// roll by -s: out[i] = in[(i + s) mod H]
				src := ((b*H+(i+s)%H)*W + (j+s)%W) * C
				copy(shifted[((b*H+i)*W+j)*C:((b*H+i)*W+j+1)*C], x[src:src+C])
			}
		}
	}
	out := make([]float64, len(x))
	k := 0
	for b := 0; b < B; b++ {
		for wy := 0; wy < H/ws; wy++ {
			for wx := 0; wx < W/ws; wx++ {
				for r := 0; r < ws; r++ {
					for c := 0; c < ws; c++ {
						src := ((b*H+wy*ws+r)*W + wx*ws + c) * C
						copy(out[k*C:(k+1)*C], shifted[src:src+C])
						k++
					}
				}
			}
		}
	}
	return out
}

var windowShapes = []struct{ B, H, W, C, ws, s int }{
	{1, 4, 4, 3, 2, 0}, {2, 8, 8, 5, 4, 2}, {1, 6, 9, 2, 3, 1}, {3, 8, 8, 4, 2, 1},
	{1, 7, 7, 3, 7, 0}, {2, 14, 14, 4, 7, 3},
}

func TestWindowPartitionReverse(t *testing.T) {
	for i, sh := range windowShapes {
		t.Run(fmt.Sprint(sh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 11))
			x := swRand(rng, sh.B*sh.H*sh.W*sh.C, 0, 1)
			p := NewWindowPartition(sh.H, sh.W, sh.ws, sh.s)
			r := NewWindowReverse(sh.H, sh.W, sh.ws, sh.s)
			nw := p.Windows()
			xt := swTensor(x, sh.B, sh.H*sh.W, sh.C)
			win := p.Forward(xt)
			if want := []int{sh.B * nw, sh.ws * sh.ws, sh.C}; !tensor.ShapeEq(win.Shape, want) {
				t.Fatalf("partition shape %v, want %v", win.Shape, want)
			}
			assertClose(t, "roll+partition", win.Data, rollPartitionRef(x, sh.B, sh.H, sh.W, sh.C, sh.ws, sh.s), 0, 0)
			back := r.Forward(win)
			assertClose(t, "reverse(partition(x))", back.Data, x, 0, 0)

			// Backward: each is the other's inverse permutation; the
			// adjoint of a linear map f satisfies <f(x), dy> = <x, f*(dy)>
			// and finite differences of the float64 reference give the
			// same gradient entry by entry.
			dyv := swRand(rng, len(x), 0, 1)
			dy := swTensor(dyv, sh.B*nw, sh.ws*sh.ws, sh.C)
			dx := p.Backward(dy)
			m := min(41, len(x))
			want := make([]float64, m)
			for j := range want {
				// x[j:j+1] aliases x: numGrad perturbs the one entry.
				want[j] = numGrad(func([]float64) float64 {
					return swDot(rollPartitionRef(x, sh.B, sh.H, sh.W, sh.C, sh.ws, sh.s), dyv)
				}, x[j:j+1], 0.5)[0]
			}
			assertClose(t, "partition backward vs finite differences", dx.Data[:m], want, 1e-12, 1e-12)
			assertClose(t, "partition backward = reverse", dx.Data, float64s(r.Forward(dy).Data), 0, 0)
			dwin := r.Backward(swTensor(x, sh.B, sh.H*sh.W, sh.C))
			assertClose(t, "reverse backward = partition", dwin.Data, float64s(win.Data), 0, 0)
		})
	}
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// shiftMaskRef builds the mask as the official code does: an image of
// region labels filled slice by slice (cnt over h slices, then w slices),
// partitioned into windows, label differences != 0 -> -100.
func shiftMaskRef(H, W, ws, s int) []float64 {
	img := make([]float64, H*W)
	type span struct{ lo, hi int }
	slices := func(n int) []span { return []span{{0, n - ws}, {n - ws, n - s}, {n - s, n}} }
	cnt := 0.0
	for _, hs := range slices(H) {
		for _, wsl := range slices(W) {
			for i := hs.lo; i < hs.hi; i++ {
				for j := wsl.lo; j < wsl.hi; j++ {
					img[i*W+j] = cnt
				}
			}
			cnt++
		}
	}
	mw := rollPartitionRef(img, 1, H, W, 1, ws, 0)
	n := ws * ws
	nw := H * W / n
	out := make([]float64, nw*n*n)
	for w := 0; w < nw; w++ {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if mw[w*n+j]-mw[w*n+i] != 0 {
					out[(w*n+i)*n+j] = -100
				}
			}
		}
	}
	return out
}

func TestShiftMask(t *testing.T) {
	if ShiftMask(8, 8, 4, 0) != nil {
		t.Fatal("shift 0 must give no mask")
	}
	for _, c := range []struct{ H, W, ws, s int }{{8, 8, 4, 2}, {8, 8, 2, 1}, {14, 14, 7, 3}, {6, 9, 3, 1}, {4, 4, 4, 2}} {
		m := ShiftMask(c.H, c.W, c.ws, c.s)
		if want := []int{c.H * c.W / (c.ws * c.ws), c.ws * c.ws, c.ws * c.ws}; !tensor.ShapeEq(m.Shape, want) {
			t.Fatalf("%v: mask shape %v, want %v", c, m.Shape, want)
		}
		assertClose(t, fmt.Sprint("mask ", c), m.Data, shiftMaskRef(c.H, c.W, c.ws, c.s), 0, 0)
	}
	// The first window of a shifted map never straddles a region border;
	// the last one (bottom right) mixes four regions.
	m := ShiftMask(8, 8, 4, 2)
	for _, v := range m.Data[:16*16] {
		if v != 0 {
			t.Fatal("window 0 of an 8x8 map with window 4, shift 2 must be unmasked")
		}
	}
}

func TestWindowPartitionAllocs(t *testing.T) {
	p := NewWindowPartition(8, 8, 4, 2)
	r := NewWindowReverse(8, 8, 4, 2)
	x := tensor.New(2, 64, 16)
	n := testing.AllocsPerRun(5, func() {
		w := p.Forward(x)
		r.Backward(r.Forward(w))
		p.Backward(w)
	})
	if n > 0 {
		t.Errorf("window partition/reverse steady state allocates %.1f times", n)
	}
}
