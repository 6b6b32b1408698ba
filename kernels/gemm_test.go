package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
)

// paths returns every kernel path this CPU can run.
func gemmPaths() []Path {
	var ps []Path
	for _, p := range []Path{PathGeneric, PathAVX2, PathAVX512} {
		if supported(p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// withGemmPath runs f with kernel path p and restores the previous one.
func withGemmPath(t testing.TB, p Path, f func()) {
	prev, ok := SetKernelPath(p)
	if !ok {
		t.Fatalf("path %s unsupported", p)
	}
	defer SetKernelPath(prev)
	f()
}

func gemmRand(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

// refGemm is the float64 reference; it also returns, per element, the
// magnitude sum |alpha| sum_p |a||b| + |beta c| that scales the rounding
// error, so the tolerance is k-aware without being loose for small k.
func refGemm(transA, transB bool, m, n, k int, alpha float64, a []float32, lda int, b []float32, ldb int, beta float64, c []float32, ldc int) (ref, mag []float64) {
	ref = make([]float64, m*n)
	mag = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if transB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				sa += math.Abs(av * bv)
			}
			r := alpha * s
			g := math.Abs(alpha) * sa
			if beta != 0 {
				r += beta * float64(c[i*ldc+j])
				g += math.Abs(beta * float64(c[i*ldc+j]))
			}
			ref[i*n+j] = r
			mag[i*n+j] = g + 1e-30
		}
	}
	return ref, mag
}

// compare returns the worst error relative to the magnitude sum, and the
// worst absolute error.
func gemmCompare(m, n int, c []float32, ldc int, ref, mag []float64) (rel, abs float64) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			d := math.Abs(float64(c[i*ldc+j]) - ref[i*n+j])
			if math.IsNaN(d) {
				return math.Inf(1), math.Inf(1)
			}
			rel = max(rel, d/mag[i*n+j])
			abs = max(abs, d)
		}
	}
	return rel, abs
}

type gemmCase struct {
	m, n, k     int
	alpha, beta float32
	pad         int // extra leading-dimension padding
}

func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var cases []gemmCase
	for _, m := range []int{1, 3, 17, 197} {
		for _, n := range []int{1, 3, 17, 33, 197} {
			for _, k := range []int{1, 17, 197} {
				cases = append(cases, gemmCase{m, n, k, 1, 0, 0})
			}
		}
	}
	cases = append(cases,
		gemmCase{13, 37, 300, 0.5, 1, 3}, // two k slices, accumulate
		gemmCase{64, 65, 513, -1.5, 0.25, 5},
		gemmCase{513, 40, 20, 1, -2, 1},     // several row blocks
		gemmCase{30, 3100, 9, 2, 1, 0},      // several column blocks
		gemmCase{25, 48, 16, 0, 0.5, 2},     // alpha 0: scale only
		gemmCase{12, 32, 0, 1, 3, 0},        // k 0
		gemmCase{30, 50, 1030, 0.5, 0.5, 1}, // long k: split over threads
		gemmCase{600, 40, 2100, 1, 0.5, 1},  // tall, three long k slices (sliceK)
	)
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			worst := 0.0
			for _, tc := range cases {
				for tr := 0; tr < 4; tr++ {
					ta, tb := tr&1 != 0, tr&2 != 0
					m, n, k := tc.m, tc.n, tc.k
					ar, ac := m, k
					if ta {
						ar, ac = k, m
					}
					br, bc := k, n
					if tb {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+tc.pad, bc+tc.pad, n+tc.pad
					a := gemmRand(rng, max(ar*lda, 1))
					b := gemmRand(rng, max(br*ldb, 1))
					c := gemmRand(rng, m*ldc)
					if tc.beta == 0 {
						for i := range c {
							c[i] = float32(math.NaN()) // must not leak through beta 0
						}
					}
					ref, mag := refGemm(ta, tb, m, n, k, float64(tc.alpha), a, lda, b, ldb, float64(tc.beta), c, ldc)
					padBefore := append([]float32(nil), c...)
					Gemm(ta, tb, m, n, k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
					rel, abs := gemmCompare(m, n, c, ldc, ref, mag)
					worst = max(worst, rel)
					if rel > 1e-5 {
						t.Errorf("%s %v ta=%v tb=%v: rel err %.3g abs %.3g", p, tc, ta, tb, rel, abs)
					}
					for i := 0; i < m; i++ {
						for j := n; j < ldc; j++ {
							if math.Float32bits(c[i*ldc+j]) != math.Float32bits(padBefore[i*ldc+j]) {
								t.Fatalf("%s %v: padding of C row %d col %d was written", p, tc, i, j)
							}
						}
					}
				}
			}
			t.Logf("path %s: %d cases x 4 transposes, max error / magnitude sum = %.3g", p, len(cases), worst)
		})
	}
}

func TestGemmLargeShapes(t *testing.T) {
	// The shapes the models run, on the fast path only (the generic path is
	// covered by TestGemm at smaller sizes).
	rng := rand.New(rand.NewSource(2))
	for _, s := range [][5]int{
		{197, 576, 192, 0, 1}, {197, 197, 64, 0, 1}, {197, 64, 197, 0, 0},
		{192, 64, 1000, 1, 0}, {1000, 192, 64, 0, 0}, {1, 1536, 512, 0, 1}, {1, 100, 37, 0, 1},
		// Enough row blocks for threads to claim blocks one at a time.
		{2003, 70, 40, 0, 1}, {2003, 70, 40, 1, 0},
		// Blocked driver, B panels split over threads (packed by their users).
		{600, 700, 300, 0, 0}, {600, 700, 300, 0, 1}, {600, 700, 300, 1, 0},
	} {
		m, n, k, ta, tb := s[0], s[1], s[2], s[3] == 1, s[4] == 1
		ar, ac := m, k
		if ta {
			ar, ac = k, m
		}
		br, bc := k, n
		if tb {
			br, bc = n, k
		}
		a, b, c := gemmRand(rng, ar*ac), gemmRand(rng, br*bc), make([]float32, m*n)
		ref, mag := refGemm(ta, tb, m, n, k, 1, a, ac, b, bc, 0, c, n)
		Gemm(ta, tb, m, n, k, 1, a, ac, b, bc, 0, c, n)
		rel, abs := gemmCompare(m, n, c, n, ref, mag)
		t.Logf("%s %dx%dx%d ta=%v tb=%v: rel %.3g abs %.3g", KernelPath(), m, k, n, ta, tb, rel, abs)
		if rel > 1e-5 {
			t.Errorf("%dx%dx%d: rel err %.3g", m, k, n, rel)
		}
	}
}

func TestGemmStrided(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const m, n, k = 19, 23, 29
	// AVX-512 runs every batch through the fused driver, the other paths
	// through the batch-parallel one (batch 5) or one GEMM at a time;
	// alpha 1 reads A in place, 0.5 packs it.
	for _, p := range gemmPaths() {
		for _, bc := range []struct {
			batch       int
			alpha, beta float32
		}{{3, 1, 0}, {3, 0.5, 2}, {5, 0.5, 2}, {5, 1, 1}} {
			batch, alpha, beta := bc.batch, bc.alpha, bc.beta
			withGemmPath(t, p, func() {
				for tr := 0; tr < 4; tr++ {
					ta, tb := tr&1 != 0, tr&2 != 0
					lda, ldb := k, n
					if ta {
						lda = m
					}
					if tb {
						ldb = k
					}
					sa, sb, sc := m*k+7, k*n+3, m*n+11
					a, b := gemmRand(rng, batch*sa), gemmRand(rng, batch*sb)
					c := gemmRand(rng, batch*sc)
					c0 := append([]float32(nil), c...)
					GemmStrided(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, n, sc, batch)
					for i := 0; i < batch; i++ {
						ref, mag := refGemm(ta, tb, m, n, k, float64(alpha), a[i*sa:], lda, b[i*sb:], ldb, float64(beta), c0[i*sc:], n)
						if rel, _ := gemmCompare(m, n, c[i*sc:], n, ref, mag); rel > 1e-5 {
							t.Errorf("%s %+v matrix %d ta=%v tb=%v: rel err %.3g", p, bc, i, ta, tb, rel)
						}
					}
				}
			})
		}
	}
}

// gemmGeluRef is x*Phi(x) with Phi from erfc, which stays accurate in the
// negative tail where 1 + erf(x/sqrt2) cancels.
func gemmGeluRef(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }

func TestGemmEpilogue(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	type tc struct {
		m, n, k           int
		bias, gelu, resid bool
		accum             bool
	}
	var cases []tc
	for _, sh := range [][3]int{{1, 70, 33}, {197, 77, 300}, {40, 64, 16}, {5, 3, 1}, {20, 40, 1100}} {
		for f := 0; f < 16; f++ {
			cases = append(cases, tc{sh[0], sh[1], sh[2], f&1 != 0, f&2 != 0, f&4 != 0, f&8 != 0})
		}
	}
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			worst := 0.0
			for _, c := range cases {
				for _, tb := range []bool{false, true} {
					ldb := c.n
					if tb {
						ldb = c.k
					}
					ldc := c.n + 2
					a, b := gemmRand(rng, c.m*c.k), gemmRand(rng, c.k*c.n)
					out := gemmRand(rng, c.m*ldc)
					old := append([]float32(nil), out...)
					var ep Epilogue
					if c.bias {
						ep.Bias = gemmRand(rng, c.n)
					}
					if c.gelu {
						ep.Act = ActGELU
					}
					if c.resid {
						ep.Residual = gemmRand(rng, c.m*ldc)
					}
					ep.Accumulate = c.accum
					prod, mag := refGemm(false, tb, c.m, c.n, c.k, 1, a, c.k, b, ldb, 0, nil, 0)
					GemmEpilogue(false, tb, c.m, c.n, c.k, a, c.k, b, ldb, out, ldc, ep)
					for i := 0; i < c.m; i++ {
						for j := 0; j < c.n; j++ {
							v := prod[i*c.n+j]
							if c.bias {
								v += float64(ep.Bias[j])
							}
							if c.gelu {
								v = gemmGeluRef(v)
							}
							if c.resid {
								v += float64(ep.Residual[i*ldc+j])
							}
							if c.accum {
								v += float64(old[i*ldc+j])
							}
							d := math.Abs(float64(out[i*ldc+j])-v) / (mag[i*c.n+j] + 1 + math.Abs(v))
							worst = max(worst, d)
							if d > 1e-5 {
								t.Fatalf("%s %+v tb=%v at (%d,%d): got %g want %g", p, c, tb, i, j, out[i*ldc+j], v)
							}
						}
					}
				}
			}
			t.Logf("path %s: %d epilogue cases, max scaled error %.3g", p, len(cases)*2, worst)
		})
	}
}

func TestGemmEpilogueResidualIsC(t *testing.T) {
	// Passing C as its own residual means "add to C".
	rng := rand.New(rand.NewSource(5))
	m, n, k := 9, 40, 300
	a, b, c := gemmRand(rng, m*k), gemmRand(rng, k*n), gemmRand(rng, m*n)
	want := append([]float32(nil), c...)
	Gemm(false, false, m, n, k, 1, a, k, b, n, 1, want, n)
	GemmEpilogue(false, false, m, n, k, a, k, b, n, c, n, Epilogue{Residual: c})
	for i := range c {
		if d := math.Abs(float64(c[i] - want[i])); d > 1e-4 {
			t.Fatalf("element %d: got %g want %g", i, c[i], want[i])
		}
	}
}

func TestGemmBadArgs(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 12)
	cases := []struct {
		name string
		f    func()
		want []string
	}{
		{"short A", func() { Gemm(false, false, 4, 3, 4, 1, a, 4, b, 3, 0, c, 3) }, []string{"A is stored 4x4", "op(B) 4x3", "C 4x3"}},
		{"small ldb", func() { Gemm(false, true, 3, 4, 3, 1, a, 3, b, 2, 0, c, 4) }, []string{"B is stored 4x3 but ld=2", "op(A) 3x3"}},
		{"short C", func() { Gemm(true, false, 4, 4, 3, 1, a, 4, b, 4, 0, c, 4) }, []string{"C is stored 4x4", "op(A) 4x3"}},
		{"negative", func() { Gemm(false, false, -1, 3, 4, 1, a, 4, b, 3, 0, c, 3) }, []string{"negative size m=-1"}},
		{"bias", func() { GemmEpilogue(false, false, 3, 4, 3, a, 3, b, 4, c, 4, Epilogue{Bias: a[:2]}) }, []string{"bias has 2", "C is 3x4"}},
		{"strided", func() { GemmStrided(false, false, 2, 2, 2, 1, a, 2, 4, b, 2, 4, 0, c, 2, 4, 4) }, []string{"A is stored 2x2", "has only 0"}},
	}
	for _, tc := range cases {
		msg := func() (s string) {
			defer func() { s = fmt.Sprint(recover()) }()
			tc.f()
			return "no panic"
		}()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: panic %q lacks %q", tc.name, msg, w)
			}
		}
	}
}

func TestGemmNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	m, n, k := 197, 192, 192
	a, b, c := gemmRand(rng, m*k), gemmRand(rng, n*k), make([]float32, m*n)
	bias := gemmRand(rng, n)
	f := func() {
		GemmEpilogue(false, true, m, n, k, a, k, b, k, c, n, Epilogue{Bias: bias})
	}
	f()
	if got := testing.AllocsPerRun(20, f); got > 0 {
		t.Errorf("GemmEpilogue allocates %.1f times per call", got)
	}
}

func TestParallelFor(t *testing.T) {
	for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {7, 1}, {100, 3}, {1000, 1000}, {5, 0}} {
		hits := make([]int32, tc.n)
		var calls atomic.Int32
		ParallelFor(tc.n, tc.grain, func(lo, hi int) {
			calls.Add(1)
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&hits[i], 1)
			}
		})
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d grain=%d: index %d run %d times", tc.n, tc.grain, i, h)
			}
		}
		if c := int(calls.Load()); c > Threads() || (tc.n > 0 && c < 1) {
			t.Errorf("n=%d: %d chunks for %d threads", tc.n, c, Threads())
		}
	}
	// Nested calls run inline and still cover their range.
	var total atomic.Int64
	ParallelFor(8, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ParallelFor(10, 1, func(lo, hi int) { total.Add(int64(hi - lo)) })
		}
	})
	if total.Load() != 80 {
		t.Errorf("nested: covered %d of 80", total.Load())
	}
	// A panic in a worker's chunk reaches the caller.
	got := func() (r any) {
		defer func() { r = recover() }()
		ParallelFor(4, 1, func(lo, hi int) {
			if lo > 0 {
				panic("chunk failed")
			}
		})
		return nil
	}()
	if Threads() > 1 && got != "chunk failed" {
		t.Errorf("panic not propagated: %v", got)
	}
	// The pool is usable after a panic.
	var n atomic.Int32
	ParallelFor(4, 1, func(lo, hi int) { n.Add(int32(hi - lo)) })
	if n.Load() != 4 {
		t.Errorf("after panic: covered %d of 4", n.Load())
	}
}

func TestGemmConcurrent(t *testing.T) {
	// Independent goroutines share the pool and the buffer free list: one
	// of them gets the workers, the others run inline, all stay correct.
	rng := rand.New(rand.NewSource(7))
	const m, n, k, g = 50, 70, 90, 4
	a, b := gemmRand(rng, m*k), gemmRand(rng, n*k)
	ref, mag := refGemm(false, true, m, n, k, 1, a, k, b, k, 0, nil, 0)
	errs := make(chan string, g)
	for i := 0; i < g; i++ {
		go func() {
			c := make([]float32, m*n)
			for range 20 {
				Gemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
				if rel, _ := gemmCompare(m, n, c, n, ref, mag); rel > 1e-5 {
					errs <- fmt.Sprintf("rel err %.3g", rel)
					return
				}
			}
			errs <- ""
		}()
	}
	for i := 0; i < g; i++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

func TestGeluEpilogueKernel(t *testing.T) {
	// The vector GELU of the epilogue against float64 erf: values across
	// [-12, 12] plus huge magnitudes, every tail length, and the element
	// after the slice left alone.
	var xs []float32
	for v := -12.0; v <= 12; v += 0.001953125 {
		xs = append(xs, float32(v))
	}
	xs = append(xs, 0, -0, 1e-30, -1e-30, 30, -30, 1e20, -1e20, 3.4e38, -3.4e38)
	got := append([]float32(nil), xs...)
	geluInPlace(got)
	worstAbs, worstRel := 0.0, 0.0
	for i, x := range xs {
		want := gemmGeluRef(float64(x))
		d := math.Abs(float64(got[i]) - want)
		worstAbs = max(worstAbs, d)
		if math.Abs(want) > 1e-35 {
			worstRel = max(worstRel, d/math.Abs(want))
		}
		// Relative accuracy in the negative tail too (the kernel avoids
		// the 1/2 - 1/2 cancellation). There exp(-x^2/2) is limited by the
		// float32 rounding of its argument: ~1e-6 relative at x = -5,
		// 1e-5 at x = -12 (where GELU is 1e-31).
		if d > 1e-6*max(1, math.Abs(want)) || (math.Abs(want) > 1e-35 && d > 3e-5*math.Abs(want)) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: gelu(%g) = %g, want %g", KernelPath(), x, got[i], want)
		}
	}
	t.Logf("%s: %d values, max abs err %.3g, max rel err %.3g", KernelPath(), len(xs), worstAbs, worstRel)
	// No subnormal results for ordinary inputs: subnormal arithmetic is
	// microcoded and made the fused fc1 epilogue 30 % slower.
	if KernelPath() == PathAVX512 {
		for v := float32(-40); v <= 0; v += 0.0625 {
			y := []float32{v}
			geluInPlace(y)
			if y[0] != 0 && math.Abs(float64(y[0])) < 0x1p-126 {
				t.Fatalf("gelu(%g) = %g is subnormal", v, y[0])
			}
		}
	}
	for n := 0; n <= 40; n++ {
		buf := make([]float32, n+1)
		for i := range buf {
			buf[i] = float32(i) - 20
		}
		buf[n] = 7
		geluInPlace(buf[:n])
		if buf[n] != 7 {
			t.Fatalf("n=%d: element past the slice changed to %g", n, buf[n])
		}
		for i := 0; i < n; i++ {
			if want := gemmGeluRef(float64(i) - 20); math.Abs(float64(buf[i])-want) > 1e-6*max(1, math.Abs(want)) {
				t.Fatalf("n=%d i=%d: got %g want %g", n, i, buf[i], want)
			}
		}
	}
}

func TestGemmThreadInvariance(t *testing.T) {
	// Every element of C is one kernel's sum over the same k slices in the
	// same order whatever the split, so results are bit-identical on 1 and
	// N threads (training runs reproduce across machines' core counts).
	rng := rand.New(rand.NewSource(8))
	for _, s := range [][5]int{{197, 576, 192, 0, 1}, {2003, 70, 300, 0, 1}, {192, 64, 1000, 1, 0}, {1, 700, 300, 0, 1}, {197, 197, 64, 0, 0}} {
		m, n, k, ta, tb := s[0], s[1], s[2], s[3] == 1, s[4] == 1
		a, b := gemmRand(rng, m*k), gemmRand(rng, n*k)
		lda, ldb := k, n
		if ta {
			lda = m
		}
		if tb {
			ldb = k
		}
		ep := Epilogue{Bias: gemmRand(rng, n), Act: ActGELU}
		var got [2][]float32
		for i, th := range []int{1, 0} {
			prev := Threads()
			SetThreads(th)
			got[i] = make([]float32, m*n)
			GemmEpilogue(ta, tb, m, n, k, a, lda, b, ldb, got[i], n, ep)
			SetThreads(prev)
		}
		for i := range got[0] {
			if math.Float32bits(got[0][i]) != math.Float32bits(got[1][i]) {
				t.Fatalf("%v: element %d differs: %g on 1 thread, %g on %d", s, i, got[0][i], got[1][i], Threads())
			}
		}
	}
}
