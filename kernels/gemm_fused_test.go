package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

func TestEdgeKernels(t *testing.T) {
	// Every tile height and width against the float64 reference, both A
	// addressings, k with and without a tail past the unrolled loop, both
	// store modes, with and without the bias and residual added at the
	// store.
	if bestPath != PathAVX512 {
		t.Skip("needs AVX-512")
	}
	rng := rand.New(rand.NewSource(11))
	for _, direct := range []bool{false, true} {
		for nv := 1; nv <= 2; nv++ {
			for rows := 1; rows <= 12; rows++ {
				for _, kc := range []int{1, 3, 4, 17, 64} {
					for mode := 0; mode < 8; mode++ {
						acc := mode & 1
						cols := 16 * nv
						const lda, ldb, ldc = 70, 40, 37
						a := gemmRand(rng, 70*70)
						b := gemmRand(rng, kc*ldb)
						c := gemmRand(rng, rows*ldc)
						c0 := append([]float32(nil), c...)
						var bias, res []float32
						var bp, rp *float32
						if mode&2 != 0 {
							bias = gemmRand(rng, cols)
							bp = &bias[0]
						}
						if mode&4 != 0 {
							res = gemmRand(rng, rows*ldc)
							rp = &res[0]
						}
						var ap *float32
						if direct {
							ap = &a[0] // row i at a[i*lda], step p at +p
						} else {
							ap = &a[0] // step p at a[p*lda], row i at +i
						}
						kernelAVX512Rows(direct, rows, nv, kc, ap, lda, &b[0], ldb, &c[0], ldc, acc, bp, rp)
						if bias != nil || res != nil {
							// The same bits as a plain store followed by
							// the separate epilogue pass.
							sep := append([]float32(nil), c0...)
							kernelAVX512Rows(direct, rows, nv, kc, ap, lda, &b[0], ldb, &sep[0], ldc, acc, nil, nil)
							epilogueAdd(sep, ldc, rows, cols, bias, res, ldc)
							if i, ok := bitsEqual(c, sep); !ok {
								t.Fatalf("direct=%v %dx%d kc=%d mode=%d: element %d: in-kernel %g, separate pass %g", direct, rows, cols, kc, mode, i, c[i], sep[i])
							}
						}
						for i := 0; i < rows; i++ {
							for j := 0; j < ldc; j++ {
								got := c[i*ldc+j]
								if j >= cols {
									if got != c0[i*ldc+j] {
										t.Fatalf("direct=%v %dx%d kc=%d: wrote C[%d][%d] past the tile", direct, rows, cols, kc, i, j)
									}
									continue
								}
								var s, mag float64
								for p := 0; p < kc; p++ {
									av := a[p*lda+i]
									if direct {
										av = a[i*lda+p]
									}
									s += float64(av) * float64(b[p*ldb+j])
									mag += math.Abs(float64(av) * float64(b[p*ldb+j]))
								}
								if acc == 1 {
									s += float64(c0[i*ldc+j])
									mag += math.Abs(float64(c0[i*ldc+j]))
								}
								if bias != nil {
									s += float64(bias[j])
									mag += math.Abs(float64(bias[j]))
								}
								if res != nil {
									s += float64(res[i*ldc+j])
									mag += math.Abs(float64(res[i*ldc+j]))
								}
								if d := math.Abs(float64(got) - s); d > 1e-6*(mag+1e-30) {
									t.Fatalf("direct=%v %dx%d kc=%d acc=%d: C[%d][%d] = %g, want %g", direct, rows, cols, kc, acc, i, j, got, s)
								}
							}
						}
						if rows < 12 {
							// Rows below the tile are untouched (c has exactly rows rows).
							_ = c[rows*ldc-1]
						}
					}
				}
			}
		}
	}
}

// bitsEqual reports the first index where x and y differ bit-wise.
func bitsEqual(x, y []float32) (int, bool) {
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return i, false
		}
	}
	return 0, true
}

func TestFusedMatchesBlocked(t *testing.T) {
	// The fused driver runs the same k slices and the same per-element sums
	// as the blocked one, so with alpha = 1 the two agree bit for bit.
	if bestPath != PathAVX512 {
		t.Skip("needs AVX-512")
	}
	rng := rand.New(rand.NewSource(12))
	for _, s := range [][3]int{{197, 576, 192}, {197, 192, 768}, {5, 17, 300}, {197, 197, 64}, {192, 64, 1000}, {13, 33, 257}, {480, 40, 30}} {
		m, n, k := s[0], s[1], s[2]
		for tr := 0; tr < 4; tr++ {
			ta, tb := tr&1 != 0, tr&2 != 0
			lda, ldb := k, n
			if ta {
				lda = m
			}
			if tb {
				ldb = k
			}
			a, b := gemmRand(rng, m*k), gemmRand(rng, n*k)
			cInit := gemmRand(rng, m*n)
			ep := Epilogue{Bias: gemmRand(rng, n), Accumulate: tr == 1}
			var got [2][]float32
			for i, off := range []bool{false, true} {
				noFused = off
				got[i] = append([]float32(nil), cInit...)
				GemmEpilogue(ta, tb, m, n, k, a, lda, b, ldb, got[i], n, ep)
				noFused = false
			}
			if i, ok := bitsEqual(got[0], got[1]); !ok {
				t.Errorf("%dx%dx%d ta=%v tb=%v: element %d: fused %g, blocked %g", m, k, n, ta, tb, i, got[0][i], got[1][i])
			}
		}
	}
}

func TestKernelEpilogueBits(t *testing.T) {
	// Bias and residual added by the kernels as they store (the fused
	// driver's exact tiles) give the bits of the separate epilogue pass,
	// for every epilogue the layers use, packed or not, on shapes with
	// edge tiles in both directions.
	if bestPath != PathAVX512 {
		t.Skip("needs AVX-512")
	}
	rng := rand.New(rand.NewSource(19))
	for _, s := range [][3]int{{197, 384, 384}, {197, 96, 1536}, {25, 100, 64}, {1, 64, 40}, {13, 48, 600}} {
		m, n, k := s[0], s[1], s[2]
		ldc := n + 5
		a := gemmRand(rng, m*k)
		b := gemmRand(rng, n*k)
		var pb PackedB
		pb.Pack(true, k, n, b, k)
		bias := gemmRand(rng, n)
		res := gemmRand(rng, m*ldc)
		relu := func(c []float32, ldc, i0, i1, j0, j1 int) {
			for i := i0; i < i1; i++ {
				for j := j0; j < j1; j++ {
					c[i*ldc+j] = max(c[i*ldc+j], 0)
				}
			}
		}
		eps := []Epilogue{{Bias: bias}, {Residual: res}, {Bias: bias, Residual: res}, {Bias: bias, Accumulate: true},
			{Bias: bias, Residual: res, Accumulate: true}, {Bias: bias, Act: ActGELU}, {Bias: bias, Act: ActGELU, Residual: res},
			{Bias: bias, Act: ActGELU, Accumulate: true}, {Bias: bias, Tile: relu}}
		for e, ep := range eps {
			for _, packed := range []bool{false, true} {
				cInit := gemmRand(rng, m*ldc)
				var got [2][]float32
				for i, off := range []bool{false, true} {
					noKernelEp = off
					got[i] = append([]float32(nil), cInit...)
					if packed {
						GemmPacked(m, a, k, &pb, got[i], ldc, ep)
					} else {
						GemmEpilogue(false, true, m, n, k, a, k, b, k, got[i], ldc, ep)
					}
					noKernelEp = false
				}
				if i, ok := bitsEqual(got[0], got[1]); !ok {
					t.Errorf("%dx%dx%d epilogue %d packed=%v: element %d: in-kernel %g, separate %g", m, k, n, e, packed, i, got[0][i], got[1][i])
				}
			}
		}
	}
}

func TestGemmPacked(t *testing.T) {
	// GemmPacked equals GemmEpilogue on the unpacked operand bit for bit
	// (same kernels, same k slices), on every path, including the
	// fallbacks (one row; generic and AVX2 paths pack nothing).
	rng := rand.New(rand.NewSource(13))
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			for _, s := range [][3]int{{197, 576, 192}, {197, 192, 768}, {1, 100, 37}, {3, 17, 5}, {700, 70, 300}, {40, 200, 1030}, {12, 32, 0}} {
				m, n, k := s[0], s[1], s[2]
				for _, tb := range []bool{true, false} {
					for _, ep := range []Epilogue{{}, {Bias: gemmRand(rng, n), Act: ActGELU}, {Bias: gemmRand(rng, n), Accumulate: true}, {Act: ActGELU, Accumulate: true}, {Residual: gemmRand(rng, m*n)}} {
						name := fmt.Sprintf("%s %dx%dx%d tb=%v ep=%v/%v/%v", p, m, k, n, tb, ep.Bias != nil, ep.Act, ep.Accumulate)
						ldb := n + 3
						if tb {
							ldb = k + 3
						}
						b := gemmRand(rng, max(n, k)*ldb)
						a := gemmRand(rng, m*(k+1))
						var pb PackedB
						pb.Pack(tb, k, n, b, ldb)
						if kk, nn := pb.Dims(); kk != k || nn != n {
							t.Fatalf("%s: Dims = %d,%d", name, kk, nn)
						}
						cInit := gemmRand(rng, m*n)
						want := append([]float32(nil), cInit...)
						got := append([]float32(nil), cInit...)
						GemmEpilogue(false, tb, m, n, k, a, k+1, b, ldb, want, n, ep)
						GemmPacked(m, a, k+1, &pb, got, n, ep)
						if i, ok := bitsEqual(got, want); !ok {
							t.Fatalf("%s: element %d: packed %g, unpacked %g", name, i, got[i], want[i])
						}
						if p == PathAVX512 {
							// Against float64 too, so the equality is not
							// two equally wrong answers.
							if ep.Bias == nil && ep.Act == ActNone && ep.Residual == nil {
								ref, mag := refGemm(false, tb, m, n, k, 1, a, k+1, b, ldb, map[bool]float64{true: 1}[ep.Accumulate], cInit, n)
								if rel, _ := gemmCompare(m, n, got, n, ref, mag); rel > 1e-5 {
									t.Fatalf("%s: rel err %.3g", name, rel)
								}
							}
						}
					}
				}
			}
		})
	}
}

func TestGemmPackedRepack(t *testing.T) {
	// Pack reuses storage; after the operand changes, a new Pack is what
	// makes GemmPacked see it.
	rng := rand.New(rand.NewSource(14))
	m, n, k := 50, 64, 40
	a, b := gemmRand(rng, m*k), gemmRand(rng, n*k)
	var pb PackedB
	pb.Pack(true, k, n, b, k)
	c1, c2 := make([]float32, m*n), make([]float32, m*n)
	for i := range b {
		b[i] *= -2
	}
	pb.Pack(true, k, n, b, k)
	GemmPacked(m, a, k, &pb, c1, n, Epilogue{})
	Gemm(false, true, m, n, k, 1, a, k, b, k, 0, c2, n)
	if i, ok := bitsEqual(c1, c2); !ok {
		t.Fatalf("after repacking: element %d: %g vs %g", i, c1[i], c2[i])
	}
}

func TestGemmPackedBadArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short B", func() { var p PackedB; p.Pack(true, 10, 10, make([]float32, 50), 10) }},
		{"bad ldb", func() { var p PackedB; p.Pack(false, 10, 10, make([]float32, 100), 5) }},
		{"never packed", func() {
			GemmPacked(3, make([]float32, 30), 10, &PackedB{k: 10, n: 10}, make([]float32, 30), 10, Epilogue{})
		}},
		{"short A", func() {
			var p PackedB
			p.Pack(true, 10, 10, make([]float32, 100), 10)
			GemmPacked(3, make([]float32, 20), 10, &p, make([]float32, 30), 10, Epilogue{})
		}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

func TestGemmPackedNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewSource(15))
	m, n, k := 197, 192, 192
	a, b, c := gemmRand(rng, m*k), gemmRand(rng, n*k), make([]float32, m*n)
	bias := gemmRand(rng, n)
	var pb PackedB
	pb.Pack(true, k, n, b, k)
	f := func() { GemmPacked(m, a, k, &pb, c, n, Epilogue{Bias: bias, Act: ActGELU}) }
	f()
	if got := testing.AllocsPerRun(20, f); got > 0 {
		t.Errorf("GemmPacked allocates %.1f times per call", got)
	}
	g := func() { pb.Pack(true, k, n, b, k) }
	if got := testing.AllocsPerRun(20, g); got > 0 {
		t.Errorf("re-Pack allocates %.1f times per call", got)
	}
}
