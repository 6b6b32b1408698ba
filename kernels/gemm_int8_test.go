package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// withInt8 runs f on the int8 GEMM path, skipping without AVX512_VNNI.
func withInt8(t *testing.T, f func()) {
	t.Helper()
	if !hasVNNI || bestPath != PathAVX512 {
		t.Skip("no AVX512_VNNI")
	}
	withGemmPath(t, PathAVX512, f)
}

// TestQuantU8Row: the assembly quantizer gives the Go loop's bytes and
// scales, all-zero groups and ties included.
func TestQuantU8Row(t *testing.T) {
	withInt8(t, func() {
		rng := rand.New(rand.NewSource(11))
		for _, s := range [][2]int{{64, 64}, {192, 64}, {256, 64}, {96, 32}, {128, 32}, {512, 128}, {48, 48}} {
			k, g := s[0], s[1]
			x := gemmRand(rng, k)
			clear(x[:g]) // an all-zero group
			if k > g {
				for i := g; i < 2*g; i++ {
					x[i] = float32(i%5-2) * 0.5 // ties at .5 after scaling
				}
			}
			if k > 2*g {
				x[2*g+3] = float32(math.NaN())
			}
			if k > 3*g {
				x[3*g+5] = float32(math.Inf(-1))
			}
			ng := k / g
			q1, q2 := make([]byte, k), make([]byte, k)
			s1, s2 := make([]float32, 3*ng), make([]float32, 3*ng)
			quantU8RowAVX512(&x[0], k, g, &q1[0], &s1[0], 12)
			quantU8RowGo(x, k, g, q2, s2, 3)
			for i := range q1 {
				if v := float64(x[i]); q1[i] != q2[i] && !math.IsNaN(v) && !math.IsInf(v, 0) { // moot: the scale is NaN or Inf
					t.Fatalf("k=%d g=%d: code %d = %d, Go loop %d (x %v)", k, g, i, q1[i], q2[i], x[i])
				}
			}
			if k > 2*g && !math.IsNaN(float64(s1[6])) {
				t.Fatalf("k=%d g=%d: a group with a NaN has scale %v", k, g, s1[6])
			}
			for i := range s1 {
				if math.Float32bits(s1[i]) != math.Float32bits(s2[i]) {
					t.Fatalf("k=%d g=%d: scale %d = %v, Go loop %v", k, g, i, s1[i], s2[i])
				}
			}
		}
	})
}

// refInt8 is the float64 reference of the int8 GEMM from the same
// quantized A (quantU8RowGo) and W: per group the exact integer dot
// product times both scales, summed in float64, with the magnitude sum
// of the group terms that scales float32 rounding.
func refInt8(m int, a []float32, lda int, q *QMatrix) (ref, mag []float64) {
	n, k, g := q.N, q.K, q.Group
	ng := k / g
	codes, ws := q.Int8Parts()
	aq := make([]byte, k)
	as := make([]float32, ng)
	ref, mag = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		quantU8RowGo(a[i*lda:i*lda+k], k, g, aq, as, 1)
		for j := 0; j < n; j++ {
			var s, sa float64
			for b := 0; b < ng; b++ {
				var d int64
				for p := b * g; p < (b+1)*g; p++ {
					d += int64(int(aq[p])-128) * int64(codes[j*k+p])
				}
				v := float64(d) * float64(ws[j*ng+b]) * float64(as[b])
				s += v
				sa += math.Abs(v)
			}
			ref[i*n+j], mag[i*n+j] = s, sa
		}
	}
	return ref, mag
}

// TestGemmInt8: the VPDPBUSD GEMM against the float64 reference of the
// same quantized operands, on every tile height and column tail, several
// group sizes, with and without accumulation, and bit-identical on 1 and
// 2 threads.
func TestGemmInt8(t *testing.T) {
	withInt8(t, func() {
		defer SetThreads(Threads())
		rng := rand.New(rand.NewSource(12))
		worst := 0.0
		type shape struct{ m, n, k, g int }
		var shapes []shape
		for m := 1; m <= 13; m++ {
			shapes = append(shapes, shape{m, 1 + (m*7)%40, 64, 64})
		}
		shapes = append(shapes, shape{7, 32, 128, 64}, shape{9, 33, 192, 64}, shape{14, 64, 96, 32},
			shape{8, 65, 256, 128}, shape{5, 17, 48, 48}, shape{6, 40, 64, 16}, shape{11, 34, 80, 80}, shape{3, 96, 1024, 64}, shape{200, 40, 4096, 64})
		for _, s := range shapes {
			a := gemmRand(rng, s.m*(s.k+3))
			q, err := QuantizeInt8(gemmRand(rng, s.n*s.k), s.n, s.k, s.g)
			if err != nil {
				t.Fatal(err)
			}
			lda, ldc := s.k+3, s.n+2
			ref, mag := refInt8(s.m, a, lda, q)
			old := gemmRand(rng, s.m*ldc)
			var first []float32
			for th := 1; th <= 2; th++ {
				SetThreads(th)
				for _, acc := range []bool{false, true} {
					c := append([]float32(nil), old...)
					gemmInt8(s.m, a, lda, q, c, ldc, Epilogue{Accumulate: acc})
					for i := 0; i < s.m; i++ {
						for j := 0; j < s.n; j++ {
							want := ref[i*s.n+j]
							if acc {
								want += float64(old[i*ldc+j])
							}
							d := math.Abs(float64(c[i*ldc+j]) - want)
							tol := 2e-6*(mag[i*s.n+j]+math.Abs(want)) + 1e-30
							worst = max(worst, d/(mag[i*s.n+j]+math.Abs(want)+1e-30))
							if d > tol {
								t.Fatalf("%v acc=%v threads %d: C[%d,%d] = %v, want %v (diff %.3g, tol %.3g)", s, acc, th, i, j, c[i*ldc+j], want, d, tol)
							}
						}
						if j := s.n; j < ldc && c[i*ldc+j] != old[i*ldc+j] {
							t.Fatalf("%v: wrote past column %d", s, s.n)
						}
					}
					if acc {
						continue
					}
					if first == nil {
						first = c
					} else {
						for i := range c {
							if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
								t.Fatalf("%v: threads 2 gives C[%d] = %v, threads 1 %v", s, i, c[i], first[i])
							}
						}
					}
				}
			}
		}
		t.Logf("int8 GEMM: max |C - float64 ref| / magnitude sum %.3g", worst)
	})
}

// TestGemmQInt8Epilogue: GemmQ on the int8 path applies bias, GELU,
// residual, Accumulate and Tile as the float32 epilogue does on the
// product, bit for bit, on 1 and 2 threads.
func TestGemmQInt8Epilogue(t *testing.T) {
	withInt8(t, func() {
		defer SetThreads(Threads())
		rng := rand.New(rand.NewSource(13))
		m, n, k := 23, 70, 192
		a := gemmRand(rng, m*k)
		q, _ := Quantize(Int8, gemmRand(rng, n*k), n, k)
		bias, res, old := gemmRand(rng, n), gemmRand(rng, m*n), gemmRand(rng, m*n)
		prod := make([]float32, m*n)
		gemmInt8(m, a, k, q, prod, n, Epilogue{})
		tile := func(c []float32, ldc, i0, i1, j0, j1 int) {
			for i := i0; i < i1; i++ {
				for j := j0; j < j1; j++ {
					c[i*ldc+j] = max(0, c[i*ldc+j])
				}
			}
		}
		eps := []Epilogue{{Bias: bias}, {Bias: bias, Residual: res}, {Bias: bias, Act: ActGELU, Residual: res},
			{Accumulate: true, Bias: bias}, {Accumulate: true, Bias: bias, Act: ActGELU, Residual: res},
			{Bias: bias, Tile: tile}}
		for ei, ep := range eps {
			want := append([]float32(nil), prod...)
			if ep.Accumulate && ep.Act != ActNone {
				inner := ep
				inner.Accumulate, inner.Residual = false, nil
				applyEpilogue(&inner, want, n, 0, m, 0, n)
				for i := range want {
					want[i] = old[i] + (want[i] + res[i])
				}
			} else {
				if ep.Accumulate {
					for i := range want {
						want[i] += old[i]
					}
				}
				applyEpilogue(&ep, want, n, 0, m, 0, n)
			}
			for th := 1; th <= 2; th++ {
				SetThreads(th)
				c := append([]float32(nil), old...)
				GemmQ(m, a, k, q, c, n, ep)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						t.Fatalf("epilogue %d threads %d: C[%d] = %v, want %v", ei, th, i, c[i], want[i])
					}
				}
			}
		}
	})
}

// TestGemmQInt8Accuracy logs what quantizing the activations costs
// against the dequantizing path (float32 A) on random operands, and
// bounds it: per-64-group 8-bit A adds ~0.3 % relative error per
// product, far below W's own quantization.
func TestGemmQInt8Accuracy(t *testing.T) {
	withInt8(t, func() {
		rng := rand.New(rand.NewSource(14))
		m, n, k := 37, 96, 384
		a := gemmRand(rng, m*k)
		q, _ := Quantize(Int8, gemmRand(rng, n*k), n, k)
		got, deq := make([]float32, m*n), make([]float32, m*n)
		GemmQ(m, a, k, q, got, n, Epilogue{})
		noInt8GEMM = true
		GemmQ(m, a, k, q, deq, n, Epilogue{})
		noInt8GEMM = false
		var num, den float64
		for i := range got {
			d := float64(got[i] - deq[i])
			num += d * d
			den += float64(deq[i]) * float64(deq[i])
		}
		rel := math.Sqrt(num / den)
		t.Logf("int8 GEMM vs float32 activations (same int8 W): rms rel diff %.3g", rel)
		if rel > 0.01 {
			t.Errorf("rms relative difference %.3g from quantizing A", rel)
		}
	})
}

// TestInt8PackCache: a matrix is packed once; a matrix with other bytes
// (a copy) gets its own packing.
func TestInt8PackCache(t *testing.T) {
	rng := rand.New(rand.NewSource(15))
	q, _ := Quantize(Int8, gemmRand(rng, 40*64), 40, 64)
	p1, p2 := int8PackOf(q), int8PackOf(q)
	if p1 != p2 {
		t.Fatal("packed twice")
	}
	c := &QMatrix{Dtype: Int8, N: q.N, K: q.K, Group: q.Group, Q: append([]byte(nil), q.Q...)}
	if int8PackOf(c) == p1 {
		t.Fatal("a copy shares the original's packing")
	}
}

// BenchmarkGEMMInt8Paths times GemmQ on int8 weights by the VPDPBUSD
// GEMM and by the dequantizing fallback, interleaved, with the
// float32 GEMM beside them, on DeiT shapes and small m (the crossover).
//
//	go test -run '^$' -bench GEMMInt8Paths -count 3 ./kernels/
func BenchmarkGEMMInt8Paths(b *testing.B) {
	if !hasVNNI || bestPath != PathAVX512 {
		b.Skip("no AVX512_VNNI")
	}
	for _, s := range [][3]int{{2, 192, 576}, {4, 192, 576}, {8, 384, 1152}, {32, 384, 1152}, {197, 192, 576}, {197, 384, 1536}} {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewSource(1))
		a, w := gemmRand(rng, m*k), gemmRand(rng, n*k)
		c := make([]float32, m*n)
		q, _ := Quantize(Int8, w, n, k)
		for _, mode := range []string{"f32", "int8", "int8deq"} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", m, k, n, mode), func(b *testing.B) {
				noInt8GEMM = mode == "int8deq"
				defer func() { noInt8GEMM = false }()
				for b.Loop() {
					if mode == "f32" {
						GemmEpilogue(false, true, m, n, k, a, k, w, k, c, n, Epilogue{})
					} else {
						GemmQ(m, a, k, q, c, n, Epilogue{})
					}
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestGemmQInt8Fallback: without the VNNI path (pure Go kernels, or
// SetInt8Gemm(false)) GemmQ on int8 weights gives the float32 GEMM's bits
// on the dequantized matrix.
func TestGemmQInt8Fallback(t *testing.T) {
	rng := rand.New(rand.NewSource(16))
	m, n, k := 9, 45, 128
	a := gemmRand(rng, m*k)
	q, _ := Quantize(Int8, gemmRand(rng, n*k), n, k)
	dq := make([]float32, n*k)
	q.DequantizeRows(0, n, dq)
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			for _, on := range []bool{true, false} {
				if on && p == PathAVX512 {
					continue // the VPDPBUSD GEMM (TestGemmInt8)
				}
				prev := SetInt8Gemm(on)
				want, got := make([]float32, m*n), make([]float32, m*n)
				GemmEpilogue(false, true, m, n, k, a, k, dq, k, want, n, Epilogue{})
				GemmQ(m, a, k, q, got, n, Epilogue{})
				SetInt8Gemm(prev)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("path %s, int8 GEMM %v: C[%d] = %v, dequantized GEMM %v", p, on, i, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestGemmInt8NaN: a NaN or Inf in a row of A makes that row of C NaN or
// Inf (its group scale is NaN or Inf) rather than being quantized away;
// the other rows are unaffected.
func TestGemmInt8NaN(t *testing.T) {
	withInt8(t, func() {
		rng := rand.New(rand.NewSource(17))
		m, n, k := 9, 40, 128
		a := gemmRand(rng, m*k)
		a[2*k+70] = float32(math.NaN())
		a[5*k+3] = float32(math.Inf(1))
		q, _ := Quantize(Int8, gemmRand(rng, n*k), n, k)
		c := make([]float32, m*n)
		GemmQ(m, a, k, q, c, n, Epilogue{})
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				v := float64(c[i*n+j])
				if bad := i == 2 || i == 5; bad != (math.IsNaN(v) || math.IsInf(v, 0)) {
					t.Fatalf("C[%d,%d] = %v (NaN or Inf expected: %v)", i, j, v, bad)
				}
			}
		}
	})
}
