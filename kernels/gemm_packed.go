package kernels

import "fmt"

// PackedB is a constant right-hand GEMM operand laid out once for the
// microkernel in use, so that repeated products with it (a Linear layer's
// weight in evaluation) skip the per-call re-layout: for the weight
// [out,in] of y = x W^T that is a transpose, ~15 % of a DeiT-Small
// forward at batch 1.
//
// The layout is the B panels of the blocked GEMM, each covering all of k:
// panel j holds columns [j*nr, j*nr+nr) as k consecutive runs of nr floats
// (zero past the last column), so slice pc of panel j starts at
// data[(j*k+pc)*nr]. GemmPacked therefore computes exactly what Gemm
// computes from the unpacked operand, bit for bit.
//
// A PackedB keeps a reference to the operand it was packed from and falls
// back to it when the packed form cannot serve (a single row, which is a
// GEMV over the rows of the original; or a kernel path without a packed
// form, e.g. SLAB_KERNELS=generic). The operand must therefore stay
// unchanged while the PackedB is in use: after changing it, call Pack
// again.
type PackedB struct {
	k, n   int
	transB bool
	src    []float32
	ldb    int
	kind   kernelKind // the kernel family data was laid out for
	nr     int
	data   []float32
	job    packBJob
}

// packBJob packs panels [lo, hi) of a PackedB; a struct rather than a
// closure so that repacking allocates nothing.
type packBJob struct {
	p  *PackedB
	kr ukernel
}

func (j *packBJob) run(lo, hi int) {
	p, kr := j.p, &j.kr
	for jb := lo; jb < hi; jb++ {
		j0 := jb * kr.nr
		cols := min(kr.nr, p.n-j0)
		dst := p.data[jb*p.k*kr.nr : (jb+1)*p.k*kr.nr]
		if p.transB {
			packBT(kr, p.src, p.ldb, 0, p.k, j0, cols, dst)
		} else {
			packBN(kr.nr, p.src, p.ldb, 0, p.k, j0, cols, 0, 1, dst)
		}
	}
}

// Pack lays out op(B), k x n (transB: B is stored n x k with row stride
// ldb, the [out,in] weight of a Linear; otherwise k x n with row stride
// ldb), reusing p's storage when it is large enough. Bad shapes or a short
// slice panic with a message naming them.
func (p *PackedB) Pack(transB bool, k, n int, b []float32, ldb int) {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels.PackedB.Pack: negative size k=%d n=%d", k, n))
	}
	rows, cols := k, n
	if transB {
		rows, cols = n, k
	}
	if rows > 0 && cols > 0 {
		if ldb < cols {
			panic(fmt.Sprintf("kernels.PackedB.Pack: B is stored %dx%d but ldb=%d < %d", rows, cols, ldb, cols))
		}
		if len(b) < (rows-1)*ldb+cols {
			panic(fmt.Sprintf("kernels.PackedB.Pack: B is stored %dx%d (ld %d, needs %d elements) but has %d", rows, cols, ldb, (rows-1)*ldb+cols, len(b)))
		}
	}
	p.k, p.n, p.transB, p.src, p.ldb = k, n, transB, b, ldb
	kr := uk
	p.kind, p.nr = kr.kind, kr.nr
	if kr.kind != kernelAVX512 || k == 0 || n == 0 {
		p.data = p.data[:0]
		return
	}
	npb := (n + kr.nr - 1) / kr.nr
	p.data = growF32(&p.data, npb*k*kr.nr)
	p.job = packBJob{p: p, kr: kr}
	parallelRun(npb, 1, 1, &p.job)
	p.job.p = nil
}

// Dims reports op(B)'s shape, k x n (0 x 0 before the first Pack).
func (p *PackedB) Dims() (k, n int) { return p.k, p.n }

// GemmPacked computes C = epilogue(A * op(B)) like GemmEpilogue(false,
// p's transB, m, n, k, a, lda, B, ldb, c, ldc, ep), with op(B) read from
// its packed form: A is m x k row-major (row stride lda), C m x n.
func GemmPacked(m int, a []float32, lda int, p *PackedB, c []float32, ldc int, ep Epilogue) {
	gemmPacked(m, m, a, lda, p, c, ldc, ep)
}

// GemmPackedRows is GemmPacked for m >= 2 rows of a product of mAll rows:
// it takes mAll's k slices, so a product computed block by block (each
// block while its inputs are in cache) gives GemmPacked's bits for the
// whole. Not with Accumulate and an activation together.
func GemmPackedRows(mAll, m int, a []float32, lda int, p *PackedB, c []float32, ldc int, ep Epilogue) {
	if m < 2 || mAll < m || ep.Accumulate && ep.Act != ActNone {
		panic(fmt.Sprintf("kernels.GemmPackedRows: %d of %d rows, accumulate %v, activation %d", m, mAll, ep.Accumulate, ep.Act))
	}
	gemmPacked(mAll, m, a, lda, p, c, ldc, ep)
}

func gemmPacked(mAll, m int, a []float32, lda int, p *PackedB, c []float32, ldc int, ep Epilogue) {
	if p == nil || p.src == nil && p.k*p.n > 0 {
		panic("kernels.GemmPacked: operand was never packed")
	}
	k, n := p.k, p.n
	if m == 1 || p.kind != uk.kind || p.nr != uk.nr || len(p.data) == 0 {
		GemmEpilogue(false, p.transB, m, n, k, a, lda, p.src, p.ldb, c, ldc, ep)
		return
	}
	checkGemm(false, p.transB, m, n, k, a, lda, p.src, p.ldb, c, ldc)
	checkEpilogue(m, n, c, ldc, &ep)
	if ep.Accumulate && ep.Act != ActNone {
		// The activation must not see the old C (see GemmEpilogue).
		w := getWork()
		tmp := growF32(&w.tmp, m*n)
		inner := ep
		inner.Accumulate, inner.Residual = false, nil
		w.ep = inner
		gemmFused(w, false, p.transB, m, n, k, 1, a, lda, 0, nil, 0, 0, 0, tmp, n, 0, 1, &w.ep, p)
		w.ep = Epilogue{}
		addInto(m, n, c, ldc, tmp, ep.Residual)
		putWork(w)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	w := getWork()
	w.mAll = mAll
	beta := float32(0)
	if ep.Accumulate {
		beta = 1
	}
	var epw *Epilogue
	if ep.active() {
		w.ep = ep
		epw = &w.ep
	}
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		if epw != nil {
			applyEpilogue(epw, c, ldc, 0, m, 0, n)
		}
	} else {
		gemmFused(w, false, p.transB, m, n, k, 1, a, lda, 0, nil, 0, 0, beta, c, ldc, 0, 1, epw, p)
	}
	w.ep, w.mAll = Epilogue{}, 0
	putWork(w)
}
