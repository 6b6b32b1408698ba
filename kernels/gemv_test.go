package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
)

// TestGemv checks the M = 1 path (dot8 runs, a dot4 run, Go tails in rows
// and in k) against the float64 reference on every kernel path.
func TestGemv(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			worst := 0.0
			for _, n := range []int{1, 3, 4, 7, 8, 12, 15, 17, 64, 65, 197, 1000} {
				for _, k := range []int{1, 15, 16, 17, 32, 48, 100, 1024} {
					for _, pad := range []int{0, 3} {
						ldb := k + pad
						x := gemmRand(rng, k)
						w := gemmRand(rng, n*ldb)
						y := gemmRand(rng, n)
						ref, mag := refGemm(false, true, 1, n, k, 0.5, x, k, w, ldb, 0.25, y, n)
						Gemm(false, true, 1, n, k, 0.5, x, k, w, ldb, 0.25, y, n)
						rel, abs := gemmCompare(1, n, y, n, ref, mag)
						worst = max(worst, rel)
						if rel > 1e-5 {
							t.Errorf("%s n=%d k=%d ldb=%d: rel err %.3g abs %.3g", p, n, k, ldb, rel, abs)
						}
					}
				}
			}
			t.Logf("path %s: max error / magnitude sum = %.3g", p, worst)
		})
	}
}

// TestGemvShared: one region over several matrices gives each product
// bit for bit as a Gemm call of its own does.
func TestGemvShared(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			for _, k := range []int{0, 1, 17, 64, 1024} {
				ns := []int{1, 13, 256, 1000}
				x := gemmRand(rng, k+1)
				var ops []GemvOp
				var want [][]float32
				for _, n := range ns {
					w := gemmRand(rng, n*k)
					ops = append(ops, GemvOp{W: w, Y: make([]float32, n)})
					y := make([]float32, n)
					if k > 0 {
						Gemm(false, true, 1, n, k, 1, x, k, w, k, 0, y, n)
					}
					want = append(want, y)
				}
				for i := range ops {
					for j := range ops[i].Y {
						ops[i].Y[j] = float32(math.NaN()) // must be overwritten
					}
				}
				GemvShared(x, k, ops...)
				for i, op := range ops {
					for j := range op.Y {
						if math.Float32bits(op.Y[j]) != math.Float32bits(want[i][j]) {
							t.Fatalf("%s k=%d product %d row %d: %v, Gemm gives %v", p, k, i, j, op.Y[j], want[i][j])
						}
					}
				}
			}
		})
	}
}

func TestGemvSharedBadArgs(t *testing.T) {
	x := make([]float32, 8)
	w := make([]float32, 16)
	for _, tc := range []struct {
		name string
		f    func()
		want string
	}{
		{"short W", func() { GemvShared(x, 8, GemvOp{W: w, Y: make([]float32, 3)}) }, "product 0: W has 16 elements, needs 3 rows x 8"},
		{"short x", func() { GemvShared(x, 9, GemvOp{W: w, Y: make([]float32, 1)}) }, "x has 8 elements, k is 9"},
		{"too many", func() {
			op := GemvOp{W: w, Y: make([]float32, 2)}
			GemvShared(x, 8, op, op, op, op, op)
		}, "5 products, at most 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Fatalf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			tc.f()
		})
	}
}

func TestGemvSharedNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	x := gemmRand(rng, 256)
	a, b := gemmRand(rng, 512*256), gemmRand(rng, 384*256)
	ya, yb := make([]float32, 512), make([]float32, 384)
	f := func() { GemvShared(x, 256, GemvOp{W: a, Y: ya}, GemvOp{W: b, Y: yb}) }
	f()
	if n := testing.AllocsPerRun(20, f); n != 0 {
		t.Fatalf("GemvShared allocates %.1f times per call", n)
	}
}
