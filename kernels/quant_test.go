package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// quantCase is one low-precision storage to test: a dtype, the int8
// group, and for bf16 whether x goes through VDPBF16PS.
type quantCase struct {
	dtype Dtype
	group int
	dot   bool // bf16: VDPBF16PS; int8: the float kernel, not int8 x int16
}

func (c quantCase) String() string {
	switch {
	case c.dtype == Int8 && c.dot:
		return fmt.Sprintf("int8f/g%d", c.group)
	case c.dtype == Int8:
		return fmt.Sprintf("int8/g%d", c.group)
	case c.dot:
		return "bf16/dot"
	}
	return "bf16/widen"
}

// quantCases lists the storages for rows of k: bf16 both ways, int8 with
// every group that divides k among 16, 32, 64, 128, k, and a group that
// is not a multiple of 16 (Go kernel only).
func quantCases(k int) []quantCase {
	cs := []quantCase{{dtype: BF16}, {dtype: BF16, dot: true}}
	for _, g := range []int{16, 32, 64, 128, k, 5} {
		if g > 0 && k%g == 0 && (g != k || k > 128) {
			cs = append(cs, quantCase{dtype: Int8, group: g}, quantCase{dtype: Int8, group: g, dot: true})
		}
	}
	return cs
}

func (c quantCase) quantize(t *testing.T, w []float32, n, k int) *QMatrix {
	var q *QMatrix
	var err error
	if c.dtype == BF16 {
		q, err = QuantizeBF16(w, n, k)
	} else {
		q, err = QuantizeInt8(w, n, k, c.group)
	}
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// refQ is the float64 reference of x W^T on the SAME quantized weights
// (W dequantized exactly in float64; with the VDPBF16PS path, x rounded
// to bf16 as the instruction does), with the magnitude sum |x||w| per row
// that scales float32 rounding.
func refQ(q *QMatrix, x []float32, dot bool) (ref, mag []float64) {
	k := q.K
	if q.Dtype == Int8 && !dot && curPath == PathAVX512 && x16OK(q.Group, k) {
		// The int8 x int16 kernel reads x quantized per group.
		x16, xs := make([]int16, k), make([]float32, k/q.Group)
		quantX16(x, q.Group, x16, xs)
		x = make([]float32, k)
		for i, v := range x16 {
			x[i] = xs[i/q.Group] * float32(v)
		}
	}
	ref, mag = make([]float64, q.N), make([]float64, q.N)
	for r := range q.N {
		var s, sa float64
		for p := range k {
			var wv float64
			if q.Dtype == BF16 {
				wv = float64(FromBF16(q.BF16[r*k+p]))
			} else {
				g := p / q.Group
				blk := r*q.RowBytes() + g*(q.Group+4)
				wv = float64(q.scaleAt(r, g)) * float64(int8(q.Q[blk+p%q.Group]))
			}
			xv := float64(x[p])
			if dot && q.Dtype == BF16 && hasBF16 && curPath == PathAVX512 {
				xv = float64(FromBF16(ToBF16(x[p])))
			}
			s += xv * wv
			sa += math.Abs(xv * wv)
		}
		ref[r], mag[r] = s, sa+1e-30
	}
	return ref, mag
}

// TestQuantize: bf16 rounds to nearest even; int8 codes stay in
// [-127, 127] and reconstruct each weight within half a step of its
// group's scale.
func TestQuantize(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{{1, 0x3f80}, {1 + 1.0/256, 0x3f80}, {1 + 3.0/256, 0x3f82}, {-2.5, 0xc020}, {float32(math.Inf(1)), 0x7f80}} {
		if got := ToBF16(c.f); got != c.want {
			t.Errorf("ToBF16(%v) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if h := ToBF16(float32(math.NaN())); !math.IsNaN(float64(FromBF16(h))) {
		t.Errorf("ToBF16(NaN) = %#04x is not a NaN", h)
	}
	rng := rand.New(rand.NewSource(1))
	n, k, g := 5, 96, 32
	w := gemmRand(rng, n*k)
	w[7] = 0 // a block with a zero weight, and a whole zero block:
	for i := 64; i < 96; i++ {
		w[i] = 0
	}
	q, err := QuantizeInt8(w, n, k, g)
	if err != nil {
		t.Fatal(err)
	}
	d := make([]float32, n*k)
	q.DequantizeRows(0, n, d)
	worst := 0.0
	for r := range n {
		for b := range k / g {
			s := float64(q.scaleAt(r, b))
			for p := b * g; p < (b+1)*g; p++ {
				e := math.Abs(float64(d[r*k+p]) - float64(w[r*k+p]))
				if e > s/2*(1+1e-6) {
					t.Fatalf("row %d weight %d: %v -> %v, step %v", r, p, w[r*k+p], d[r*k+p], s)
				}
				worst = max(worst, e/max(s, 1e-30))
			}
		}
	}
	t.Logf("int8 worst error / scale = %.3f", worst)
	if _, err := QuantizeInt8(w, n, k, 40); err == nil {
		t.Error("group 40 of rows of 96: no error")
	}
}

// TestGemvQ checks every dtype's GEMV (8-row bands, 4- and 1-row kernels,
// k tails, groups of every size) on every kernel path against the float64
// reference of the same quantized weights, and that 1, 2 and 3 threads
// give the same bits.
func TestGemvQ(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	defer SetThreads(Threads())
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			worst := map[string]float64{}
			for _, n := range []int{1, 3, 4, 7, 8, 13, 64, 67, 1000} {
				for _, k := range []int{16, 32, 48, 100, 128, 160, 1040} {
					x := gemmRand(rng, k)
					w := gemmRand(rng, n*k)
					for _, c := range quantCases(k) {
						q := c.quantize(t, w, n, k)
						prev := SetBF16Dot(c.dot)
						noI8X16 = c.dot
						ref, mag := refQ(q, x, c.dot)
						var ys [3][]float32
						for th := 1; th <= 3; th++ {
							SetThreads(th)
							ys[th-1] = make([]float32, n)
							GemvQ(x, QGemvOp{W: q, Y: ys[th-1]})
						}
						SetBF16Dot(prev)
						noI8X16 = false
						rel, abs := gemmCompare(1, n, ys[0], n, ref, mag)
						worst[c.String()] = max(worst[c.String()], rel)
						if rel > 2e-6 {
							t.Errorf("%s %s n=%d k=%d: rel err %.3g abs %.3g", p, c, n, k, rel, abs)
						}
						for th := 2; th <= 3; th++ {
							for i := range ys[0] {
								if math.Float32bits(ys[0][i]) != math.Float32bits(ys[th-1][i]) {
									t.Fatalf("%s %s n=%d k=%d: row %d differs on %d threads: %v vs %v", p, c, n, k, i, th, ys[th-1][i], ys[0][i])
								}
							}
						}
					}
				}
			}
			t.Logf("path %s: max error / magnitude sum %v", p, worst)
		})
	}
}

// TestGemvQShared: several matrices in one region give what each gives
// alone.
func TestGemvQShared(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	k := 256
	x := gemmRand(rng, k)
	var ops []QGemvOp
	var want [][]float32
	for i, n := range []int{17, 256, 8, 1000} {
		dt := BF16
		if i%2 == 1 {
			dt = Int8
		}
		q, err := Quantize(dt, gemmRand(rng, n*k), n, k)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, n)
		GemvQ(x, QGemvOp{W: q, Y: y})
		want = append(want, y)
		ops = append(ops, QGemvOp{W: q, Y: make([]float32, n)})
	}
	GemvQ(x, ops...)
	for i, op := range ops {
		for j := range op.Y {
			if op.Y[j] != want[i][j] {
				t.Fatalf("op %d row %d: %v shared, %v alone", i, j, op.Y[j], want[i][j])
			}
		}
	}
}

// TestGemmQ: GemmQ with an epilogue is GemmEpilogue on the dequantized
// weights bit for bit (strips do not change any sum), on every path and
// thread count, and within float32 rounding of the float64 reference.
func TestGemmQ(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	defer SetThreads(Threads())
	noInt8GEMM = true // the dequantizing path (the VPDPBUSD one: gemm_int8_test.go)
	defer func() { noInt8GEMM = false }()
	// The dequantizing path; the VDPBF16PS one is gemm_bf16_test.go's.
	defer SetBF16Gemm(SetBF16Gemm(false))
	for _, p := range gemmPaths() {
		withGemmPath(t, p, func() {
			worst := 0.0
			for _, s := range [][3]int{{2, 5, 32}, {13, 67, 48}, {197, 192, 64}, {50, 700, 256}, {3, 40, 1040}} {
				m, n, k := s[0], s[1], s[2]
				a := gemmRand(rng, m*k)
				w := gemmRand(rng, n*k)
				bias := gemmRand(rng, n)
				res := gemmRand(rng, m*n)
				for _, c := range quantCases(k) {
					if c.dot {
						continue
					}
					q := c.quantize(t, w, n, k)
					dq := make([]float32, n*k)
					q.DequantizeRows(0, n, dq)
					for _, ep := range []Epilogue{{}, {Bias: bias, Act: ActGELU, Residual: res}} {
						want := make([]float32, m*n)
						GemmEpilogue(false, true, m, n, k, a, k, dq, k, want, n, ep)
						for th := 1; th <= 2; th++ {
							SetThreads(th)
							got := make([]float32, m*n)
							GemmQ(m, a, k, q, got, n, ep)
							for i := range got {
								if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
									t.Fatalf("%s %s %dx%dx%d ep=%v threads %d: C[%d] = %v, dequantized GEMM %v", p, c, m, n, k, ep.Act, th, i, got[i], want[i])
								}
							}
						}
						if ep.Act == ActNone {
							ref, mag := refGemm(false, true, m, n, k, 1, a, k, dq, k, 0, nil, n)
							rel, abs := gemmCompare(m, n, want, n, ref, mag)
							worst = max(worst, rel)
							if rel > 1e-5 {
								t.Errorf("%s %s %dx%dx%d: rel err %.3g abs %.3g", p, c, m, n, k, rel, abs)
							}
						}
					}
				}
			}
			t.Logf("path %s: max error / magnitude sum %.3g", p, worst)
		})
	}
}

// TestVDPBF16PSEncoding runs the check of the emitted bytes: bf16
// pairs (1, 1) x (1, 2) plus 0.5 is 3.5 in every lane, through the one-row
// VDPBF16PS kernel (x = 1, w = 1, 2 alternating; k = 32 gives 16 lanes
// of 1*1 + 1*2 = 3, i.e. 48 in all).
func TestVDPBF16PSEncoding(t *testing.T) {
	if !hasBF16 || bestPath != PathAVX512 {
		t.Skip("no AVX512_BF16")
	}
	x := make([]uint16, 32)
	w := make([]uint16, 32)
	for i := range x {
		x[i] = ToBF16(1)
		w[i] = ToBF16(float32(1 + i%2))
	}
	var out [gemvRows]float32
	callBF16Dot(1, 32, &x[0], &w[0], 32, &out[0])
	if out[0] != 48 {
		t.Fatalf("VDPBF16PS kernel: %v, want 48", out[0])
	}
}

// TestQuantNoAlloc: steady-state GemvQ and GemmQ calls allocate nothing.
func TestQuantNoAlloc(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	m, n, k := 5, 300, 256
	a := gemmRand(rng, m*k)
	c := make([]float32, m*n)
	bias := gemmRand(rng, n)
	for _, dt := range []Dtype{BF16, Int8} {
		q, err := Quantize(dt, gemmRand(rng, n*k), n, k)
		if err != nil {
			t.Fatal(err)
		}
		run := func() {
			GemvQ(a[:k], QGemvOp{W: q, Y: c[:n]})
			GemmQ(m, a, k, q, c, n, Epilogue{Bias: bias})
		}
		run()
		if allocs := testing.AllocsPerRun(20, run); allocs != 0 {
			t.Errorf("%v: %.1f allocations per GemvQ + GemmQ", dt, allocs)
		}
	}
}

// TestInt8Parts: NewInt8 rebuilds the matrix Int8Parts takes apart.
func TestInt8Parts(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	q, err := QuantizeInt8(gemmRand(rng, 6*64), 6, 64, 32)
	if err != nil {
		t.Fatal(err)
	}
	codes, scales := q.Int8Parts()
	r, err := NewInt8(6, 64, 32, codes, scales)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Q) != string(q.Q) {
		t.Fatal("NewInt8(Int8Parts(q)) differs from q")
	}
	if _, err := NewInt8(6, 64, 32, codes[1:], scales); err == nil {
		t.Error("short codes: no error")
	}
}

// TestQuantX16: the assembly int16 quantizer of x gives quantX16Go's
// scales and codes bit for bit (ties at .5 away from zero, signed zeros,
// a zero group, the clamp at ±32767, groups of 16 to 4096), and every code
// is within half a step of x / scale (plus the float32 rounding of
// x * (1/scale): 2^-8 at 32767).
func TestQuantX16(t *testing.T) {
	if !hasI8X16 {
		t.Skip("no AVX-512 int16 quantizer")
	}
	rng := rand.New(rand.NewSource(9))
	for _, group := range []int{16, 32, 48, 64, 128, 4096} {
		for _, groups := range []int{1, 3, 16} {
			n := group * groups
			x := gemmRand(rng, n)
			for i := range x {
				switch rng.Intn(8) {
				case 0:
					x[i] = float32(rng.Intn(65535)-32767) / 2 // exact halves when the scale is 1
				case 1:
					x[i] = float32(math.Copysign(0, float64(rng.Intn(2)-1)))
				case 2:
					x[i] *= 1e6
				}
			}
			if groups > 1 {
				clear(x[group : 2*group]) // a zero group
			}
			if groups > 2 {
				x[2*group] = 32767 // scale 1: the halves above are ties
			}
			q, qg := make([]int16, n), make([]int16, n)
			xs, xsg := make([]float32, groups), make([]float32, groups)
			quantX16(x, group, q, xs)
			quantX16Go(x, group, qg, xsg)
			for g := range groups {
				if math.Float32bits(xs[g]) != math.Float32bits(xsg[g]) {
					t.Fatalf("group %d of %d: scale %v, Go %v", g, group, xs[g], xsg[g])
				}
			}
			worst := 0.0
			for i := range q {
				if q[i] != qg[i] {
					t.Fatalf("group size %d, x[%d] = %v: code %d, Go %d", group, i, x[i], q[i], qg[i])
				}
				if s := xs[i/group]; s > 0 {
					e := math.Abs(float64(x[i])/float64(s) - float64(q[i]))
					worst = max(worst, e)
					if e > 0.5+1.0/256 {
						t.Fatalf("group size %d, x[%d] = %v: code %d, x/scale %v", group, i, x[i], q[i], float64(x[i])/float64(s))
					}
				}
			}
			t.Logf("group %d x %d: max |x/scale - code| = %.4f", group, groups, worst)
		}
	}
}

// TestGemvQG64: the band kernel specialised to groups of 64 gives the
// generic int8 x int16 band kernel's bits (the int32 group sums are exact
// either way), on 1-3 threads.
func TestGemvQG64(t *testing.T) {
	if !hasI8X16 || curPath != PathAVX512 {
		t.Skip("no int8 x int16 kernel")
	}
	defer SetThreads(Threads())
	rng := rand.New(rand.NewSource(10))
	for _, s := range [][2]int{{67, 1024}, {256, 64}, {1000, 192}} {
		n, k := s[0], s[1]
		q, err := QuantizeInt8(gemmRand(rng, n*k), n, k, 64)
		if err != nil {
			t.Fatal(err)
		}
		x := gemmRand(rng, k)
		want := make([]float32, n)
		noI8G64 = true
		GemvQ(x, QGemvOp{W: q, Y: want})
		noI8G64 = false
		for th := 1; th <= 3; th++ {
			SetThreads(th)
			got := make([]float32, n)
			GemvQ(x, QGemvOp{W: q, Y: got})
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%dx%d, %d threads: row %d = %v, generic kernel %v", n, k, th, i, got[i], want[i])
				}
			}
		}
	}
}

// TestNewBF16: a bf16 matrix built from stored values holds exactly those
// values (a copy), and a count that does not fill n x k is an error.
func TestNewBF16(t *testing.T) {
	vals := []uint16{0x3f80, 0xbf80, 0x4000, 0x0001, 0x7f7f, 0x8000}
	q, err := NewBF16(2, 3, vals)
	if err != nil {
		t.Fatal(err)
	}
	vals[0] = 0
	if q.N != 2 || q.K != 3 || q.Dtype != BF16 || q.BF16[0] != 0x3f80 || q.BF16[5] != 0x8000 {
		t.Fatalf("NewBF16: %+v", q)
	}
	got := make([]float32, 6)
	q.DequantizeRows(0, 2, got)
	if got[0] != 1 || got[1] != -1 || got[2] != 2 {
		t.Errorf("dequantized %v", got)
	}
	if _, err := NewBF16(2, 3, vals[:5]); err == nil {
		t.Error("5 values for 2x3 accepted")
	}
}
