package kernels

import "fmt"

// GEMMs with low-precision weights dequantize W a strip of rows at a time
// into a float32 buffer of ~512 KiB (in L2) and run the float32 GEMM on
// it: the microkernel keeps its float32 FMA rate, and the extra pass is one
// read of the small weights plus an L2-resident write, against m*k*strip
// FMAs. Each column of C is the float32 GEMM's sum over k in the same
// order whatever the strip, so this path gives exactly what GemmEpilogue
// gives on the dequantized matrix. Where the CPU has the instructions,
// int8 weights go instead to the VPDPBUSD GEMM (gemm_int8.go: A quantized
// per row and weight group to 8 bits, 3x float32's speed on DeiT shapes)
// and bf16 weights to the VDPBF16PS one (gemm_bf16.go: A rounded to bf16);
// SetInt8Gemm(false) and SetBF16Gemm(false) keep them here.

// gemmQStripBytes is the float32 size a dequantized strip aims at.
const gemmQStripBytes = 512 << 10

// GemmQ computes C = epilogue(A W^T) like GemmEpilogue(false, true, m,
// w.N, w.K, a, lda, W, w.K, c, ldc, ep) for W stored low-precision: A is
// m x K row-major (row stride lda), C m x N (row stride ldc). One row
// without an epilogue other than a bias is a GemvQ. Bad shapes panic with
// a message naming the operand.
func GemmQ(m int, a []float32, lda int, w *QMatrix, c []float32, ldc int, ep Epilogue) {
	gemmQ(m, a, lda, w, c, ldc, ep, true)
}

// GemmQStrips is GemmQ on the dequantizing path only: no bf16 or int8
// GEMM, so W gets no packed second copy. For weights read mostly by GEMVs
// (a language model's, decoded a token at a time), whose short GEMMs
// (prompts) would otherwise keep a packed copy as large as the weights.
func GemmQStrips(m int, a []float32, lda int, w *QMatrix, c []float32, ldc int, ep Epilogue) {
	gemmQ(m, a, lda, w, c, ldc, ep, false)
}

func gemmQ(m int, a []float32, lda int, w *QMatrix, c []float32, ldc int, ep Epilogue, pack bool) {
	if w == nil {
		panic("kernels.GemmQ: no matrix")
	}
	checkQ("kernels.GemmQ", -1, w)
	n, k := w.N, w.K
	if m < 0 {
		panic(fmt.Sprintf("kernels.GemmQ: negative m=%d", m))
	}
	if m > 0 && k > 0 && (lda < k || len(a) < (m-1)*lda+k) {
		panic(fmt.Sprintf("kernels.GemmQ: A has %d elements (ld %d), needs %dx%d", len(a), lda, m, k))
	}
	if m > 0 && n > 0 && (ldc < n || len(c) < (m-1)*ldc+n) {
		panic(fmt.Sprintf("kernels.GemmQ: C has %d elements (ld %d), needs %dx%d", len(c), ldc, m, n))
	}
	checkEpilogue(m, n, c, ldc, &ep)
	if m == 0 || n == 0 {
		return
	}
	if pack && bf16GemmOK(w, m, &ep) {
		gemmBF16(m, a, lda, w, c, ldc, ep) // VDPBF16PS, A rounded to bf16
		return
	}
	if pack && int8GemmOK(m, w) {
		gemmInt8(m, a, lda, w, c, ldc, ep) // VPDPBUSD on quantized A (gemm_int8.go)
		return
	}
	if t := ep.Tile; t != nil {
		// The strips below see column offsets of their own: one call on
		// all of C at the end instead.
		ep.Tile = nil
		defer t(c, ldc, 0, m, 0, n)
	}
	if m == 1 && ep.Act == ActNone && ep.Residual == nil && !ep.Accumulate {
		GemvQ(a[:k], QGemvOp{W: w, Y: c[:n]})
		if ep.Bias != nil {
			AddTo(c[:n], ep.Bias[:n])
		}
		return
	}
	nb := roundUp(max(1, gemmQStripBytes/(4*max(k, 1))), 32)
	wk := getWork()
	buf := growF32(&wk.deq, min(nb, n)*k)
	for j0 := 0; j0 < n; j0 += nb {
		j1 := min(n, j0+nb)
		strip := buf[:(j1-j0)*k]
		wk.dq = dequantJob{q: w, j0: j0, dst: strip}
		parallelRun(j1-j0, 16, 1, &wk.dq)
		wk.dq = dequantJob{}
		sep := ep
		if ep.Bias != nil {
			sep.Bias = ep.Bias[j0:j1]
		}
		if ep.Residual != nil {
			sep.Residual = ep.Residual[j0:]
		}
		GemmEpilogue(false, true, m, j1-j0, k, a, lda, strip, k, c[j0:], ldc, sep)
	}
	putWork(wk)
}

// checkQ panics unless q holds a consistent n x k matrix; what and op
// (when >= 0) name it in the message.
func checkQ(what string, op int, q *QMatrix) {
	if op >= 0 && !q.valid() {
		what = fmt.Sprintf("%s: product %d", what, op)
	}
	switch q.Dtype {
	case BF16:
		if len(q.BF16) < q.N*q.K {
			panic(fmt.Sprintf("%s: bf16 matrix %dx%d has %d values", what, q.N, q.K, len(q.BF16)))
		}
	case Int8:
		if q.Group <= 0 || q.K%q.Group != 0 || len(q.Q) < q.N*q.RowBytes() {
			panic(fmt.Sprintf("%s: int8 matrix %dx%d (group %d) has %d bytes", what, q.N, q.K, q.Group, len(q.Q)))
		}
	default:
		panic(fmt.Sprintf("%s: matrix of dtype %v", what, q.Dtype))
	}
}

// valid reports whether q is a consistent bf16 or int8 matrix.
func (q *QMatrix) valid() bool {
	switch q.Dtype {
	case BF16:
		return len(q.BF16) >= q.N*q.K
	case Int8:
		return q.Group > 0 && q.K%q.Group == 0 && len(q.Q) >= q.N*q.RowBytes()
	}
	return false
}

// dequantJob dequantizes rows [j0+lo, j0+hi) of q into dst's rows [lo,
// hi); a struct rather than a closure so that GemmQ allocates nothing.
type dequantJob struct {
	q   *QMatrix
	j0  int
	dst []float32
}

func (d *dequantJob) run(lo, hi int) {
	k := d.q.K
	d.q.DequantizeRows(d.j0+lo, d.j0+hi, d.dst[lo*k:hi*k])
}
