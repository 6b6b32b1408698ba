package kernels

import (
	"math/rand"
	"testing"
)

// TestEpilogueTile checks that Epilogue.Tile sees every element of C once,
// after the bias, on every GEMM path (direct, prepacked, one row,
// quantized), at 1 and 2 threads: the result equals the plain product
// with the same elementwise function applied afterwards, bit for bit.
func TestEpilogueTile(t *testing.T) {
	defer SetThreads(Threads())
	rng := rand.New(rand.NewSource(3))
	relu := func(c []float32, ldc, i0, i1, j0, j1 int) {
		SLAReLU(c[i0*ldc+j0:], ldc, nil, 0, i1-i0, j1-j0)
	}
	for _, th := range []int{1, 2} {
		SetThreads(th)
		for _, s := range [][3]int{{1, 40, 24}, {7, 33, 70}, {300, 96, 288}, {49, 768, 100}} {
			m, k, n := s[0], s[1], s[2]
			a, w, bias := gemmRand(rng, m*k), gemmRand(rng, n*k), gemmRand(rng, n)
			want := make([]float32, m*n)
			GemmEpilogue(false, true, m, n, k, a, k, w, k, want, n, Epilogue{Bias: bias})
			SLAReLU(want, n, nil, 0, m, n)
			var pb PackedB
			pb.Pack(true, k, n, w, k)
			q, err := QuantizeBF16(w, n, k)
			if err != nil {
				t.Fatal(err)
			}
			for name, run := range map[string]func(c []float32){
				"direct": func(c []float32) {
					GemmEpilogue(false, true, m, n, k, a, k, w, k, c, n, Epilogue{Bias: bias, Tile: relu})
				},
				"packed": func(c []float32) { GemmPacked(m, a, k, &pb, c, n, Epilogue{Bias: bias, Tile: relu}) },
			} {
				got := make([]float32, m*n)
				run(got)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s %v threads %d: element %d = %g, want %g", name, s, th, i, got[i], want[i])
					}
				}
			}
			qw := make([]float32, m*n)
			GemmQ(m, a, k, q, qw, n, Epilogue{Bias: bias})
			SLAReLU(qw, n, nil, 0, m, n)
			qg := make([]float32, m*n)
			GemmQ(m, a, k, q, qg, n, Epilogue{Bias: bias, Tile: relu})
			for i := range qg {
				if qg[i] != qw[i] {
					t.Fatalf("quantized %v threads %d: element %d = %g, want %g", s, th, i, qg[i], qw[i])
				}
			}
		}
	}
}

// TestSLAReLU checks the vector kernel against the definition, with and
// without the positional term, on widths with and without a tail.
func TestSLAReLU(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, cols := range []int{5, 16, 32, 45} {
		rows, ldc, ldp := 9, cols+7, cols+3
		c0, pos := gemmRand(rng, rows*ldc), gemmRand(rng, rows*ldp)
		for _, withPos := range []bool{false, true} {
			c := append([]float32(nil), c0...)
			var p []float32
			if withPos {
				p = pos
			}
			SLAReLU(c, ldc, p, ldp, rows, cols)
			for i := 0; i < rows; i++ {
				for j := 0; j < ldc; j++ {
					want := c0[i*ldc+j]
					if j < cols {
						if withPos {
							want += pos[i*ldp+j]
						}
						want = max(want, 0)
					}
					if c[i*ldc+j] != want {
						t.Fatalf("cols %d pos %v: [%d,%d] = %g, want %g", cols, withPos, i, j, c[i*ldc+j], want)
					}
				}
			}
		}
	}
}
