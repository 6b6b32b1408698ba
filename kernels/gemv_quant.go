package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
)

// GEMVs on bf16 and int8 weights, laid out and threaded like the float32
// GEMV of gemv.go: units of eight rows split over the threads in chunks,
// a chunk's full units read as eight bands so that each of the kernel's
// eight row streams runs on through consecutive rows. The 8-, 4- and
// 1-row kernels form each row's sum the same way, and the k tail past the
// kernel's multiple is added in Go the same way for every row, so the
// result does not depend on the thread count.

// QGemvOp is one product of GemvQ: Y = x W^T with W stored low-precision
// as len(Y) = W.N rows of W.K.
type QGemvOp struct {
	W *QMatrix
	Y []float32
}

// bf16Dot selects VDPBF16PS (x rounded to bf16) over widening for bf16
// GEMVs; see SetBF16Dot.
var bf16Dot bool

// SetBF16Dot makes bf16 GEMVs round x to bf16 and multiply with
// VDPBF16PS where the CPU has AVX512_BF16 (on: true), or widen the
// weights to float32 and keep x exact (false, the default); it returns
// the previous setting. Not safe to call while kernels run.
func SetBF16Dot(on bool) (prev bool) {
	prev, bf16Dot = bf16Dot, on
	return prev
}

// GemvQ computes op.Y = x[:K] op.W^T for up to four low-precision
// matrices with the same K in one parallel region (like GemvShared). A
// nil or mismatched matrix, a short x or Y, or more than four ops panic
// with a message naming the op.
func GemvQ(x []float32, ops ...QGemvOp) {
	if len(ops) == 0 {
		return
	}
	if len(ops) > maxGemvOps {
		panic(fmt.Sprintf("kernels.GemvQ: %d products, at most %d", len(ops), maxGemvOps))
	}
	k := -1
	for i, op := range ops {
		if op.W == nil {
			panic(fmt.Sprintf("kernels.GemvQ: product %d has no matrix", i))
		}
		checkQ("kernels.GemvQ", i, op.W)
		if k >= 0 && op.W.K != k {
			panic(fmt.Sprintf("kernels.GemvQ: product %d has K=%d, product 0 K=%d", i, op.W.K, k))
		}
		k = op.W.K
		if len(op.Y) != op.W.N {
			panic(fmt.Sprintf("kernels.GemvQ: product %d: Y has %d elements, W has %d rows", i, len(op.Y), op.W.N))
		}
	}
	if len(x) < k {
		panic(fmt.Sprintf("kernels.GemvQ: x has %d elements, K is %d", len(x), k))
	}
	w := getWork()
	g := &w.qgv
	*g = qgemvTask{k: k, x: x[:k], asm: curPath == PathAVX512}
	g.dot = g.asm && bf16Dot && hasBF16
	for _, op := range ops {
		if q := op.W; q.Dtype == Int8 && g.x16 == nil && g.asm && x16OK(q.Group, k) {
			ng := k / q.Group
			g.x16, g.xs, g.x16Group = growI16(&w.x16, k), growF32(&w.xs, ng), q.Group
			quantX16(g.x, q.Group, g.x16, g.xs)
		}
		if op.W.Dtype == BF16 && g.dot && g.xb == nil {
			g.xb = growU16(&w.xb, k)
			for i, v := range g.x {
				g.xb[i] = ToBF16(v)
			}
		}
		g.ops[g.nops] = op
		g.first[g.nops+1] = g.first[g.nops] + (op.W.N+gemvRows-1)/gemvRows
		g.nops++
	}
	parallelRun(g.first[g.nops], 8, 4, g)
	*g = qgemvTask{}
	putWork(w)
}

// x16OK reports whether int8 rows of k in groups of group run the int8 x
// int16 kernel: VPDPWSSD present, whole steps of 32, and int32 lane sums
// that cannot overflow (see gemvInt8X16 in gen/lowprec.go).
func x16OK(group, k int) bool {
	return hasI8X16 && !noI8X16 && group%32 == 0 && group <= 8192 && k > 0
}

// noI8X16 disables the int8 x int16 kernel (tests and benchmarks compare).
var noI8X16 bool

// noI8G64 sends groups of 64 to the generic int8 x int16 band kernel
// (tests and benchmarks compare).
var noI8G64 bool

// quantX16 quantizes x to int16 per group of group values, symmetric:
// xs[g] = max|x| / 32767 over the group, q = round(x / xs[g]). The
// relative error is at most 2^-16 of the group's largest |x|, far below
// the bf16 rounding of VDPBF16PS (2^-9 of each value). With AVX-512 the
// two passes over each group run as assembly (absMaxAVX512,
// quantI16AVX512) that gives quantX16Go's codes bit for bit; only the
// scale's division stays in Go.
func quantX16(x []float32, group int, q []int16, xs []float32) {
	if !hasI8X16 || group%16 != 0 || group <= 0 {
		quantX16Go(x, group, q, xs)
		return
	}
	for g := range len(x) / group {
		amax := absMaxAVX512(&x[g*group], group)
		s, inv := x16Scale(amax)
		xs[g] = s
		quantI16AVX512(&x[g*group], group, inv, &q[g*group])
	}
}

// x16Scale is a group's int16 scale and its inverse from the bits of the
// group's largest |x|.
func x16Scale(amax uint32) (s, inv float32) {
	s = math.Float32frombits(amax) / 32767
	if s > 0 {
		inv = 1 / s
	}
	return s, inv
}

// quantX16Go is quantX16 in Go (the reference of the assembly).
func quantX16Go(x []float32, group int, q []int16, xs []float32) {
	for g := range len(x) / group {
		src := x[g*group : (g+1)*group]
		var amax uint32
		for _, v := range src {
			amax = max(amax, math.Float32bits(v)&0x7fffffff)
		}
		s, inv := x16Scale(amax)
		xs[g] = s
		d := q[g*group : (g+1)*group]
		for i, v := range src {
			// Round half away from zero; |v*inv| <= 32767 (+ rounding).
			// The conversion keeps the product rounded to float32 before
			// the 0.5 is added (no fused multiply-add), as the assembly.
			r := float32(v * inv)
			if r < 0 {
				d[i] = int16(max(-32767, r-0.5))
			} else {
				d[i] = int16(min(32767, r+0.5))
			}
		}
	}
}

// growI16 returns (*s)[:n], reallocating only when capacity is short.
func growI16(s *[]int16, n int) []int16 {
	if cap(*s) < n {
		*s = make([]int16, n)
	}
	return (*s)[:n]
}

// growU16 returns (*s)[:n], reallocating only when capacity is short.
func growU16(s *[]uint16, n int) []uint16 {
	if cap(*s) < n {
		*s = make([]uint16, n)
	}
	return (*s)[:n]
}

// qgemvTask is the parallel job of one GemvQ call; its units are runs of
// gemvRows rows, numbered through the ops in order.
type qgemvTask struct {
	k   int
	x   []float32
	xb  []uint16 // x rounded to bf16 (dot mode)
	asm bool     // the AVX-512 kernels run
	dot bool     // bf16 rows by VDPBF16PS on xb
	// x16 and xs are x quantized to int16 per group of x16Group (scales
	// xs) for the int8 x int16 kernel; nil when no op uses it.
	x16      []int16
	xs       []float32
	x16Group int
	ops      [maxGemvOps]QGemvOp
	first    [maxGemvOps + 1]int
	nops     int
}

func (g *qgemvTask) run(lo, hi int) {
	for i := 0; i < g.nops; i++ {
		a, b := max(lo, g.first[i]), min(hi, g.first[i+1])
		if a < b {
			g.runOp(&g.ops[i], a-g.first[i], b-g.first[i])
		}
	}
}

// runOp computes units [lo, hi) of op: full units as eight bands of R
// rows through the band kernel (one call) or the 8-row kernel (one call
// per row of each band, and a k tail in Go), the last partial unit through the 4- and
// 1-row kernels (or everything in Go without the assembly path).
func (g *qgemvTask) runOp(op *QGemvOp, lo, hi int) {
	n := len(op.Y)
	var out [gemvRows]float32
	if !g.asm || !g.kernelOK(op.W) {
		for r := lo * gemvRows; r < min(hi*gemvRows, n); r++ {
			op.Y[r] = g.rowGo(op.W, r)
		}
		return
	}
	if full := min(hi, n/gemvRows); full > lo {
		R := full - lo
		j0 := lo * gemvRows
		if !g.band(op.W, j0, R, op.Y) {
			for i := 0; i < R; i++ {
				g.kernel(op.W, 8, j0+i, R, &out)
				for b, s := range out {
					r := j0 + i + b*R
					op.Y[r] = g.finish(op.W, r, s)
				}
			}
		}
		lo = full
	}
	for u := lo; u < hi; u++ {
		j0 := u * gemvRows
		rows := min(gemvRows, n-j0)
		r := 0
		for ; r+4 <= rows; r += 4 {
			g.kernel(op.W, 4, j0+r, 1, &out)
			for b := range 4 {
				op.Y[j0+r+b] = g.finish(op.W, j0+r+b, out[b])
			}
		}
		for ; r < rows; r++ {
			g.kernel(op.W, 1, j0+r, 1, &out)
			op.Y[j0+r] = g.finish(op.W, j0+r, out[0])
		}
	}
}

// band runs the band kernel (gen/lowprec.go) over the R row positions
// of eight bands from row j0, writing y[j0+i+b*R], when w's kind has one
// and its rows need no k tail; it reports whether it did.
func (g *qgemvTask) band(w *QMatrix, j0, R int, y []float32) bool {
	k := w.K
	switch {
	case w.Dtype == Int8:
		if g.x16 == nil || w.Group != g.x16Group {
			return false
		}
		rb := w.RowBytes()
		if w.Group == 64 && !noI8G64 {
			gemvI8XB8G64AVX512(k, w.Group, &g.x16[0], &g.xs[0], &w.Q[j0*rb], R*rb, R, &y[j0])
		} else {
			gemvI8XB8AVX512(k, w.Group, &g.x16[0], &g.xs[0], &w.Q[j0*rb], R*rb, R, &y[j0])
		}
	case g.dot:
		if k%32 != 0 {
			return false
		}
		gemvBF16DB8AVX512(k, &g.xb[0], &w.BF16[j0*k], R*k, R, &y[j0])
	default:
		if k%16 != 0 {
			return false
		}
		gemvBF16WB8AVX512(k, &g.x[0], &w.BF16[j0*k], R*k, R, &y[j0])
	}
	return true
}

// kernelOK reports whether the assembly kernels can read w: some k for
// bf16, int8 groups of a multiple of 16.
func (g *qgemvTask) kernelOK(w *QMatrix) bool {
	if w.Dtype == Int8 {
		return w.Group%16 == 0 && w.K > 0
	}
	return w.K >= 32
}

// kmain is the part of k the kernel covers for w; the rest is finish's.
func (g *qgemvTask) kmain(w *QMatrix) int {
	switch {
	case w.Dtype == Int8:
		return w.K
	case g.dot:
		return w.K &^ 31
	}
	return w.K &^ 15
}

// kernel runs the rows-row kernel on rows r0, r0+stride, ... of w.
func (g *qgemvTask) kernel(w *QMatrix, rows, r0, stride int, out *[gemvRows]float32) {
	km := g.kmain(w)
	if w.Dtype == Int8 {
		rb := w.RowBytes()
		if g.x16 != nil && w.Group == g.x16Group {
			callI8X16(rows, km, w.Group, &g.x16[0], &g.xs[0], &w.Q[r0*rb], stride*rb, &out[0])
		} else {
			callI8(rows, km, w.Group, &g.x[0], &w.Q[r0*rb], stride*rb, &out[0])
		}
		return
	}
	if g.dot {
		callBF16Dot(rows, km, &g.xb[0], &w.BF16[r0*w.K], stride*w.K, &out[0])
		return
	}
	callBF16Widen(rows, km, &g.x[0], &w.BF16[r0*w.K], stride*w.K, &out[0])
}

// finish adds the k tail past kmain to row r's kernel sum s.
func (g *qgemvTask) finish(w *QMatrix, r int, s float32) float32 {
	km := g.kmain(w)
	if km == w.K {
		return s
	}
	return s + g.tailBF16(w, r, km)
}

// tailBF16 is row r's sum over k from km on, in Go: with x rounded to
// bf16 in dot mode, as the VDPBF16PS kernel rounds it.
func (g *qgemvTask) tailBF16(w *QMatrix, r, km int) float32 {
	row := w.BF16[r*w.K+km : (r+1)*w.K]
	if g.dot {
		var t float32
		for i, h := range row {
			t += FromBF16(g.xb[km+i]) * FromBF16(h)
		}
		return t
	}
	return dotBF16Go(g.x[km:], row)
}

// rowGo is row r of x W^T by the pure-Go kernels.
func (g *qgemvTask) rowGo(w *QMatrix, r int) float32 {
	if w.Dtype == BF16 {
		return g.tailBF16(w, r, 0)
	}
	rb := w.RowBytes()
	return dotI8Go(g.x, w.Q[r*rb:(r+1)*rb], w.Group)
}

// dotBF16Go is sum x[i]*w[i] over len(w), w in bf16, four accumulators.
func dotBF16Go(x []float32, w []uint16) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += x[i] * math.Float32frombits(uint32(w[i])<<16)
		s1 += x[i+1] * math.Float32frombits(uint32(w[i+1])<<16)
		s2 += x[i+2] * math.Float32frombits(uint32(w[i+2])<<16)
		s3 += x[i+3] * math.Float32frombits(uint32(w[i+3])<<16)
	}
	for ; i < len(w); i++ {
		s0 += x[i] * math.Float32frombits(uint32(w[i])<<16)
	}
	return (s0 + s1) + (s2 + s3)
}

// dotI8Go is one int8 row (blocks of group weights and a scale) times x:
// per block the integer weights' products are summed, then scaled.
func dotI8Go(x []float32, row []byte, group int) float32 {
	var s float32
	for b := 0; b*(group+4) < len(row); b++ {
		blk := row[b*(group+4) : (b+1)*(group+4)]
		xb := x[b*group : (b+1)*group]
		var s0, s1, s2, s3 float32
		i := 0
		for ; i+4 <= group; i += 4 {
			s0 += xb[i] * float32(int8(blk[i]))
			s1 += xb[i+1] * float32(int8(blk[i+1]))
			s2 += xb[i+2] * float32(int8(blk[i+2]))
			s3 += xb[i+3] * float32(int8(blk[i+3]))
		}
		for ; i < group; i++ {
			s0 += xb[i] * float32(int8(blk[i]))
		}
		s += math.Float32frombits(binary.LittleEndian.Uint32(blk[group:])) * ((s0 + s1) + (s2 + s3))
	}
	return s
}
