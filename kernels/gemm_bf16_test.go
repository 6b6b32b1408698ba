package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// bf16GemmSkip skips t unless the VDPBF16PS GEMM can run here.
func bf16GemmSkip(t *testing.T) {
	if !hasBF16 || curPath != PathAVX512 {
		t.Skip("no AVX512_BF16, or SLAB_KERNELS chose another path")
	}
}

// roundedBF16 returns a (m rows of k, stride lda) with every element
// rounded to bf16, as the bf16 GEMM rounds its activations.
func roundedBF16(a []float32, m, k, lda int) []float32 {
	r := make([]float32, m*k)
	for i := range m {
		for p := range k {
			r[i*k+p] = FromBF16(ToBF16(a[i*lda+p]))
		}
	}
	return r
}

// TestCvtBF16Encoding checks the emitted VCVTNE2PS2BF16 bytes on hardware:
// 32 floats (ties to even both ways, signs, a carry into the exponent,
// infinities) convert in order to the bf16 ToBF16 gives.
func TestCvtBF16Encoding(t *testing.T) {
	bf16GemmSkip(t)
	src := make([]float32, 64)
	for i := range src {
		src[i] = float32(i) * 1.37
	}
	src[0] = 1 + 1.0/256           // tie, rounds down to even 1
	src[1] = 1 + 3.0/256           // tie, rounds up to even
	src[2] = -(1 + 1.0/256 + 1e-6) // above the tie
	src[3] = float32(math.Inf(-1))
	src[17] = math.Float32frombits(0x3fffffff) // rounds up into the next binade
	src[40] = -3.3e38
	dst := make([]uint16, 64)
	cvtBF16AVX512(64, &src[0], &dst[0])
	for i, v := range src {
		if want := ToBF16(v); dst[i] != want {
			t.Fatalf("element %d (%g): %#04x, want %#04x", i, v, dst[i], want)
		}
	}
	// Denormal inputs are taken as zero, and toBF16DAZ does the same.
	den := make([]float32, 32)
	den[5] = math.Float32frombits(0x00400000)
	den[6] = -math.Float32frombits(0x00000001)
	cvtBF16AVX512(32, &den[0], &dst[0])
	for i, v := range den {
		if dst[i] != toBF16DAZ(v) || dst[i]&0x7fff != 0 {
			t.Fatalf("denormal %d: %#04x, toBF16DAZ %#04x", i, dst[i], toBF16DAZ(v))
		}
	}
}

// TestGemmBF16Shapes: every tail of the tile (m 1..13 and across row
// blocks, n across 32-column panels, k odd, 1, across the 384-deep k
// slices) against the float64 product of the same bf16 weights and the
// activations rounded to bf16; the only error left is float32
// accumulation.
func TestGemmBF16Shapes(t *testing.T) {
	bf16GemmSkip(t)
	rng := rand.New(rand.NewSource(17))
	worst := 0.0
	type shape struct{ m, n, k int }
	var shapes []shape
	for m := 1; m <= 13; m++ {
		for _, n := range []int{1, 7, 32, 33, 70} {
			for _, k := range []int{1, 2, 31, 64, 97} {
				shapes = append(shapes, shape{m, n, k})
			}
		}
	}
	shapes = append(shapes, shape{5, 40, 385}, shape{25, 65, 769}, shape{197, 96, 1100}, shape{1200, 33, 70}, shape{37, 31, 2048})
	for _, s := range shapes {
		m, n, k := s.m, s.n, s.k
		lda, ldc := k+3, n+5
		a := gemmRand(rng, m*lda)
		q, err := QuantizeBF16(gemmRand(rng, n*k), n, k)
		if err != nil {
			t.Fatal(err)
		}
		dq := make([]float32, n*k)
		q.DequantizeRows(0, n, dq)
		ar := roundedBF16(a, m, k, lda)
		ref, mag := refGemm(false, true, m, n, k, 1, ar, k, dq, k, 0, nil, n)
		c0 := gemmRand(rng, m*ldc)
		c := append([]float32(nil), c0...)
		ep := Epilogue{}
		if m == 1 {
			// One plain row is a GEMV; a residual keeps it on the GEMM.
			ep.Residual = make([]float32, ldc)
		}
		if !bf16GemmOK(q, m, &ep) {
			t.Fatalf("%v: not on the bf16 GEMM", s)
		}
		GemmQ(m, a, lda, q, c, ldc, ep)
		rel, abs := gemmCompare(m, n, c, ldc, ref, mag)
		worst = max(worst, rel)
		if rel > 1e-6 {
			t.Errorf("%dx%dx%d: error %.3g of the magnitude sum (abs %.3g)", m, n, k, rel, abs)
		}
		for i := range m - 1 {
			for j := n; j < ldc; j++ {
				if c[i*ldc+j] != c0[i*ldc+j] {
					t.Fatalf("%v: wrote C[%d][%d], past column %d", s, i, j, n)
				}
			}
		}
	}
	t.Logf("%d shapes: max |C - ref| / sum |a||w| = %.3g", len(shapes), worst)
}

// TestGemmBF16Epilogue: bias, GELU, residual, accumulation and a Tile
// function give what GemmEpilogue gives on the rounded activations and the
// widened weights, up to float32 summation order; and the same bits on 1
// and 2 threads.
func TestGemmBF16Epilogue(t *testing.T) {
	bf16GemmSkip(t)
	defer SetThreads(Threads())
	rng := rand.New(rand.NewSource(18))
	worst := 0.0
	for _, s := range [][3]int{{1, 45, 64}, {7, 33, 70}, {30, 96, 191}, {197, 192, 64}, {1300, 40, 24}} {
		m, n, k := s[0], s[1], s[2]
		a := gemmRand(rng, m*k)
		q, err := QuantizeBF16(gemmRand(rng, n*k), n, k)
		if err != nil {
			t.Fatal(err)
		}
		dq := make([]float32, n*k)
		q.DequantizeRows(0, n, dq)
		ar := roundedBF16(a, m, k, k)
		_, mag := refGemm(false, true, m, n, k, 1, ar, k, dq, k, 0, nil, n)
		bias, res, c0 := gemmRand(rng, n), gemmRand(rng, m*n), gemmRand(rng, m*n)
		relu := func(c []float32, ldc, i0, i1, j0, j1 int) {
			for i := i0; i < i1; i++ {
				for j := j0; j < j1; j++ {
					c[i*ldc+j] = max(c[i*ldc+j], 0)
				}
			}
		}
		eps := map[string]Epilogue{
			"bias":          {Bias: bias},
			"bias+gelu+res": {Bias: bias, Act: ActGELU, Residual: res},
			"accumulate":    {Bias: bias, Accumulate: true},
			"acc+gelu+res":  {Bias: bias, Act: ActGELU, Residual: res, Accumulate: true},
			"tile":          {Bias: bias, Tile: relu},
		}
		for name, ep := range eps {
			want := append([]float32(nil), c0...)
			in := ar
			if !bf16GemmOK(q, m, &ep) {
				in = a // one row with a bias only is a GemvQ: A exact
			}
			GemmEpilogue(false, true, m, n, k, in, k, dq, k, want, n, ep)
			var first []float32
			for th := 1; th <= 2; th++ {
				SetThreads(th)
				got := append([]float32(nil), c0...)
				GemmQ(m, a, k, q, got, n, ep)
				if first == nil {
					first = got
				} else {
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
							t.Fatalf("%v %s: C[%d] = %v on 2 threads, %v on 1", s, name, i, got[i], first[i])
						}
					}
				}
				for i := range got {
					// GELU's slope is below 1.13 and the old C and the
					// residual are added exactly once either way.
					d := math.Abs(float64(got[i])-float64(want[i])) / (mag[i] + 1e-30)
					worst = max(worst, d)
					if d > 2e-6 {
						t.Fatalf("%v %s: C[%d] = %v, GemmEpilogue %v (%.3g of the magnitude)", s, name, i, got[i], want[i], d)
					}
				}
			}
		}
	}
	t.Logf("max |C - GemmEpilogue(rounded A)| / sum |a||w| = %.3g", worst)
}

// TestGemmBF16Threads: the same bits on 1 and 2 threads for shapes split
// over row panels, over W panels (m <= 12), and over row blocks.
func TestGemmBF16Threads(t *testing.T) {
	bf16GemmSkip(t)
	defer SetThreads(Threads())
	rng := rand.New(rand.NewSource(19))
	for _, s := range [][3]int{{2, 300, 129}, {12, 64, 800}, {50, 97, 385}, {2400, 64, 40}} {
		m, n, k := s[0], s[1], s[2]
		a := gemmRand(rng, m*k)
		q, _ := QuantizeBF16(gemmRand(rng, n*k), n, k)
		var first []float32
		for _, th := range []int{1, 2, 1} {
			SetThreads(th)
			got := make([]float32, m*n)
			GemmQ(m, a, k, q, got, n, Epilogue{})
			if first == nil {
				first = got
				continue
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%v threads %d: C[%d] = %v, 1 thread %v", s, th, i, got[i], first[i])
				}
			}
		}
	}
}

// TestGemmBF16Fallback: with the bf16 GEMM off, or on the pure-Go path,
// GemmQ is GemmEpilogue on the widened weights and exact activations, bit
// for bit; with it on, the result moves only by the rounding of A.
func TestGemmBF16Fallback(t *testing.T) {
	rng := rand.New(rand.NewSource(20))
	m, n, k := 23, 50, 77
	a := gemmRand(rng, m*k)
	q, _ := QuantizeBF16(gemmRand(rng, n*k), n, k)
	dq := make([]float32, n*k)
	q.DequantizeRows(0, n, dq)
	ep := Epilogue{Bias: gemmRand(rng, n), Act: ActGELU}
	check := func(name string) {
		want := make([]float32, m*n)
		GemmEpilogue(false, true, m, n, k, a, k, dq, k, want, n, ep)
		got := make([]float32, m*n)
		GemmQ(m, a, k, q, got, n, ep)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: C[%d] = %v, dequantized GEMM %v", name, i, got[i], want[i])
			}
		}
	}
	prev := SetBF16Gemm(false)
	check("SetBF16Gemm(false)")
	SetBF16Gemm(prev)
	withGemmPath(t, PathGeneric, func() { check("pure Go") })
	if !hasBF16 || curPath != PathAVX512 {
		return
	}
	got := make([]float32, m*n)
	GemmQ(m, a, k, q, got, n, Epilogue{})
	ref, mag := refGemm(false, true, m, n, k, 1, a, k, dq, k, 0, nil, n)
	rel, abs := gemmCompare(m, n, got, n, ref, mag)
	t.Logf("bf16 GEMM vs exact activations: max error %.3g of the magnitude sum (abs %.3g)", rel, abs)
	if rel > 1.0/256 {
		t.Errorf("bf16 GEMM off by %.3g of the magnitude sum: more than rounding A to bf16 explains", rel)
	}
}

// TestGemmBF16NoAlloc: steady-state bf16 GEMMs allocate nothing (the
// packed weights are built on the first call).
func TestGemmBF16NoAlloc(t *testing.T) {
	bf16GemmSkip(t)
	rng := rand.New(rand.NewSource(21))
	for _, s := range [][3]int{{5, 300, 256}, {197, 64, 193}} {
		m, n, k := s[0], s[1], s[2]
		a, c := gemmRand(rng, m*k), make([]float32, m*n)
		q, _ := QuantizeBF16(gemmRand(rng, n*k), n, k)
		ep := Epilogue{Bias: gemmRand(rng, n), Act: ActGELU}
		GemmQ(m, a, k, q, c, n, ep)
		if allocs := testing.AllocsPerRun(5, func() { GemmQ(m, a, k, q, c, n, ep) }); allocs != 0 {
			t.Errorf("%v: %v allocations per call", s, allocs)
		}
	}
}

// TestGemmBF16Repack: a copy of a matrix given other weights packs its
// own, and the original keeps its panels.
func TestGemmBF16Repack(t *testing.T) {
	bf16GemmSkip(t)
	rng := rand.New(rand.NewSource(22))
	m, n, k := 4, 40, 50
	a := gemmRand(rng, m*k)
	q, _ := QuantizeBF16(gemmRand(rng, n*k), n, k)
	r, _ := QuantizeBF16(gemmRand(rng, n*k), n, k)
	c1, c2, c3 := make([]float32, m*n), make([]float32, m*n), make([]float32, m*n)
	GemmQ(m, a, k, q, c1, n, Epilogue{})
	cp := *q
	cp.BF16 = r.BF16
	GemmQ(m, a, k, &cp, c2, n, Epilogue{})
	GemmQ(m, a, k, r, c3, n, Epilogue{})
	for i := range c2 {
		if c2[i] != c3[i] {
			t.Fatalf("copy with other weights: C[%d] = %v, want %v", i, c2[i], c3[i])
		}
	}
	if q.bf16Pack() == cp.bf16Pack() {
		t.Fatal("the copy shares the original's panels")
	}
}
