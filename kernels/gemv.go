package kernels

import "fmt"

// A GEMV (one row times a transposed weight, y = x W^T: every decode step
// of a language model) is bound by reading W once from DRAM. Packing would
// only add traffic, so the rows of W are read in place, eight at a time by
// the dot kernel (eight concurrent streams keep more of the memory system
// busy than four: see dotRows in gen/main.go), and split over the threads
// in chunks of at least 64 rows, each read as eight bands (runOp).
//
// GemvShared runs several GEMVs that read the same x (a decoder's q, k, v
// projections; SwiGLU's gate and up) as one parallel region: one fork/join
// instead of one per matrix, and no thread idles at a matrix boundary
// while the other finishes its half.

// gemvRows is the number of rows of W one dot-kernel call reads.
const gemvRows = 8

// maxGemvOps bounds the matrices of one GemvShared call.
const maxGemvOps = 4

// GemvOp is one product of GemvShared: Y = x W^T with W stored row-major
// as len(Y) rows of k floats.
type GemvOp struct {
	W, Y []float32
}

// GemvShared computes op.Y = x[:k] op.W^T for every op (at most four) in
// one parallel region; it returns what len(ops) separate
// Gemm(false, true, 1, len(op.Y), k, 1, x, k, op.W, k, 0, op.Y, ...) calls
// return, bit for bit. A W shorter than len(Y)*k, an x shorter than k, or
// more than four ops panic with a message naming the op and its sizes.
func GemvShared(x []float32, k int, ops ...GemvOp) {
	if len(ops) > maxGemvOps {
		panic(fmt.Sprintf("kernels.GemvShared: %d products, at most %d", len(ops), maxGemvOps))
	}
	if k < 0 || len(x) < k {
		panic(fmt.Sprintf("kernels.GemvShared: x has %d elements, k is %d", len(x), k))
	}
	for i, op := range ops {
		if len(op.W) < len(op.Y)*k {
			panic(fmt.Sprintf("kernels.GemvShared: product %d: W has %d elements, needs %d rows x %d", i, len(op.W), len(op.Y), k))
		}
	}
	if !uk.hasDot4 || k == 0 {
		for _, op := range ops {
			if n := len(op.Y); n > 0 {
				gemm(false, true, 1, n, k, 1, x, k, op.W, k, 0, op.Y, n, nil)
			}
		}
		return
	}
	w := getWork()
	w.gv = gemvTask{k: k, alpha: 1, x: x}
	for _, op := range ops {
		w.gv.add(op.W, k, op.Y)
	}
	w.gv.start()
	w.gv = gemvTask{}
	putWork(w)
}

// gemvOp is one matrix of a gemvTask: y = alpha*x W^T + beta*y, W len(y)
// rows of row stride ldw.
type gemvOp struct {
	w   []float32
	ldw int
	y   []float32
}

// gemvTask is the parallel job of one GEMV region: up to maxGemvOps
// matrices sharing x, k, alpha, beta; its units are runs of gemvRows rows,
// numbered through the ops in order.
type gemvTask struct {
	k           int
	alpha, beta float32
	x           []float32
	ep          *Epilogue // single-op calls only (Gemm's epilogue)
	ops         [maxGemvOps]gemvOp
	first       [maxGemvOps + 1]int // first unit of each op; first[nops] = total
	nops        int
}

// add appends the product y = x W^T (W len(y) rows, stride ldw).
func (g *gemvTask) add(w []float32, ldw int, y []float32) {
	g.ops[g.nops] = gemvOp{w: w, ldw: ldw, y: y}
	g.first[g.nops+1] = g.first[g.nops] + (len(y)+gemvRows-1)/gemvRows
	g.nops++
}

// start runs the task over the pool: chunks of at least 8 units (64
// rows), four chunks per thread so that a slow thread is caught up by the
// other. (One to sixteen chunks per thread streamed llama_350m's weights
// equally fast on 2026-12-06, 55.6-56.5 GB/s against 59.2 for one plain
// read of a 256 MiB buffer.)
func (g *gemvTask) start() {
	parallelRun(g.first[g.nops], 8, 4, g)
}

func (g *gemvTask) run(lo, hi int) {
	for i := 0; i < g.nops; i++ {
		a, b := max(lo, g.first[i]), min(hi, g.first[i+1])
		if a < b {
			g.runOp(&g.ops[i], a-g.first[i], b-g.first[i])
		}
	}
}

// runOp computes units [lo, hi) of op. The full units are read as eight
// bands of R consecutive rows: each dot8 call reads one row of every band,
// so each of the kernel's eight streams runs on through R rows in memory
// order instead of stopping after one (a 4 KiB row is one page: the
// hardware prefetcher had to find every stream anew). Measured on
// 2026-12-06 over llama_350m's 127 matrices in decode order (11-15
// interleaved rounds): 56-58 -> 65-68 GB/s, above a plain read of one
// 256 MiB buffer (51-66 that hour); llama_350m decoding 34-38 -> 40-42.5
// tok/s. A last unit of four to seven rows goes to dot4, fewer rows (and
// the k tail past the last multiple of 16) to Go. Each row's sum is
// formed the same way whichever path reads it.
func (g *gemvTask) runOp(op *gemvOp, lo, hi int) {
	k, x, w, ldw, y := g.k, g.x, op.w, op.ldw, op.y
	n := len(y)
	k16 := k &^ 15
	var out [gemvRows]float32
	if full := min(hi, n/gemvRows); k16 > 0 && full > lo {
		R := full - lo
		j0 := lo * gemvRows
		for i := 0; i < R; i++ {
			callDot8(k16, &x[0], &w[(j0+i)*ldw], R*ldw, &out[0])
			for b, s := range out {
				g.store(op, j0+i+b*R, s)
			}
		}
		if g.ep != nil {
			applyEpilogue(g.ep, y, 0, 0, 1, j0, j0+R*gemvRows)
		}
		lo = full
	}
	for u := lo; u < hi; u++ {
		j0 := u * gemvRows
		rows := min(gemvRows, n-j0)
		r0 := 0
		if k16 > 0 && rows >= 4 {
			callDot4(k16, &x[0], &w[j0*ldw], ldw, &out[0])
			r0 = 4
		}
		for r := r0; r < rows; r++ {
			out[r] = 0
			if k16 > 0 {
				out[r] = dotGo(x[:k16], w[(j0+r)*ldw:(j0+r)*ldw+k16])
			}
		}
		for r := 0; r < rows; r++ {
			g.store(op, j0+r, out[r])
		}
		if g.ep != nil {
			applyEpilogue(g.ep, y, 0, 0, 1, j0, j0+rows)
		}
	}
}

// store finishes row r of op from s, its dot product over the first
// multiple of 16 of k: adds the k tail, scales by alpha, adds beta*y.
func (g *gemvTask) store(op *gemvOp, r int, s float32) {
	k, ldw := g.k, op.ldw
	if k16 := k &^ 15; k16 < k {
		s += dotGo(g.x[k16:k], op.w[r*ldw+k16:r*ldw+k])
	}
	s *= g.alpha
	if g.beta != 0 {
		s += g.beta * op.y[r]
	}
	op.y[r] = s
}
