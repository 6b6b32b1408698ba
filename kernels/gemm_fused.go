package kernels

import "sync/atomic"

// The fused driver: one parallel region per call for the GEMMs whose
// per-call overheads dominate on 2 cores (M up to a couple of L2 blocks:
// batch-1 Linears, attention heads, weight gradients; or B prepacked).
// The blocked driver of gemm.go runs a packing region and a tile region
// per k slice, and its tile split is static: at 197 rows a region is tens
// of microseconds, so its barriers, the packed panels crossing between the
// cores' L2s and a thread that drew the slower half cost a quarter of the
// throughput. Here a work item is one nr-wide column panel of C against a
// block of A panels, over all k slices; a thread claims items one at a
// time and packs (or finds prepacked) the item's B panel itself, into a
// buffer of its own that stays in its L1, so a panel is written and read
// by the same core. A is read in place (row-major by the direct kernel,
// transposed by the strided one); alpha is folded into the packed B panel.
// Edge tiles run the kernel of exactly their height (and the 16-wide one
// for a narrow last panel), writing C directly; only widths that are not a
// multiple of 16 go through a scratch tile.
//
// The k slices are those of the blocked driver (kr.kc deep), and each
// element of C is one kernel's sum per slice added to C in slice order,
// so results do not depend on the thread count or on which thread ran
// which item.

// fusedMaxRows bounds M for the fused driver without a prepacked B: two
// L2 blocks of A. Taller problems reuse each packed B panel across
// thousands of rows, so the blocked driver's shared packing pays off.
func fusedOK(kr *ukernel, m int, pre bool) bool {
	return kr.kind == kernelAVX512 && (pre || m <= 2*kr.mc)
}

// fusedTask is one fused GEMM region: batch GEMMs of the same shape, matrix
// i at offsets i*strideA, i*strideB, i*strideC.
type fusedTask struct {
	kr                        *ukernel
	transA, transB            bool
	m, n, k                   int
	alpha                     float32
	a, b, c                   []float32
	lda, ldb, ldc             int
	strideA, strideB, strideC int
	accum                     bool // add to C (beta == 1)
	ep                        *Epilogue
	bInPlace                  bool // full row-major B panels are read in place
	pre                       *PackedB

	npa, npb, ablk, nab int
	items               int
	bufs                []float32 // one kc x nr panel per slot
	next                atomic.Int64
}

// plan sets the item grid for batch matrices on t threads. Items are a B
// panel against ablk A panels: all of A when that leaves every thread
// several items, else A is cut into blocks so that it does. Cutting A
// costs a repacking of the B panel per block, so blocks stay at least
// four panels tall unless B needs no packing.
func (f *fusedTask) plan(batch, t int) {
	kr := f.kr
	f.npa = (f.m + kr.mr - 1) / kr.mr
	f.npb = (f.n + kr.nr - 1) / kr.nr
	maxBlk := max(1, kr.mc/kr.mr) // an L2 block
	f.nab = (f.npa + maxBlk - 1) / maxBlk
	if want := 3 * t; t > 1 && batch*f.npb*f.nab < want {
		nab := (want + batch*f.npb - 1) / (batch * f.npb)
		minBlk := 4
		if f.pre != nil || (f.bInPlace && f.alpha == 1) {
			minBlk = 1
		}
		nab = min(nab, max(1, f.npa/minBlk))
		f.nab = max(f.nab, nab)
	}
	f.ablk = (f.npa + f.nab - 1) / f.nab
	f.nab = (f.npa + f.ablk - 1) / f.ablk
	f.items = batch * f.nab * f.npb
}

func (f *fusedTask) run(lo, hi int) {
	kr := f.kr
	panel := kr.kc * kr.nr
	for slot := lo; slot < hi; slot++ {
		var buf []float32
		if f.bufs != nil {
			buf = f.bufs[slot*panel : (slot+1)*panel]
		}
		for {
			it := int(f.next.Add(1) - 1)
			if it >= f.items {
				break
			}
			jb := it % f.npb
			ib := it / f.npb % f.nab
			mat := it / (f.npb * f.nab)
			f.item(mat, ib, jb, buf)
		}
	}
}

// item computes column panel jb of C over A panels [ib*ablk, ...) of matrix
// mat, all k slices.
func (f *fusedTask) item(mat, ib, jb int, buf []float32) {
	kr := f.kr
	mr, nr := kr.mr, kr.nr
	a := f.a[mat*f.strideA:]
	b := f.b[mat*f.strideB:]
	c := f.c[mat*f.strideC:]
	j0 := jb * nr
	cols := min(nr, f.n-j0)
	nv := 2
	if cols <= 16 {
		nv = 1
	}
	exact := cols == 16*nv // C written directly, no scratch tile
	ia0, ia1 := ib*f.ablk, min((ib+1)*f.ablk, f.npa)
	var scratch [16 * 32]float32
	for pc := 0; pc < f.k; pc += kr.kc {
		kc := min(kr.kc, f.k-pc)
		var bptr *float32
		bs := nr
		switch {
		case f.pre != nil:
			bptr = &f.pre.data[jb*f.pre.k*nr+pc*nr]
		case f.bInPlace && exact:
			bptr, bs = &b[pc*f.ldb+j0], f.ldb
		default:
			pb := buf[:kc*nr]
			if f.transB {
				packBT(kr, b, f.ldb, pc, kc, j0, cols, pb)
			} else {
				packBN(nr, b, f.ldb, pc, kc, j0, cols, 0, 1, pb)
			}
			if f.alpha != 1 {
				for i := range pb {
					pb[i] *= f.alpha
				}
			}
			bptr = &pb[0]
		}
		acc := 0
		if f.accum || pc > 0 {
			acc = 1
		}
		last := pc+kc == f.k
		for ia := ia0; ia < ia1; ia++ {
			i0 := ia * mr
			rows := min(mr, f.m-i0)
			var ap *float32
			direct := !f.transA
			if direct {
				ap = &a[i0*f.lda+pc]
			} else {
				ap = &a[pc*f.lda+i0]
			}
			if exact {
				kernelAVX512Rows(direct, rows, nv, kc, ap, f.lda, bptr, bs, &c[i0*f.ldc+j0], f.ldc, acc)
			} else {
				kernelAVX512Rows(direct, rows, nv, kc, ap, f.lda, bptr, bs, &scratch[0], 16*nv, 0)
				for i := 0; i < rows; i++ {
					ci := c[(i0+i)*f.ldc+j0 : (i0+i)*f.ldc+j0+cols]
					ti := scratch[i*16*nv : i*16*nv+cols]
					if acc != 0 {
						for j, v := range ti {
							ci[j] += v
						}
					} else {
						copy(ci, ti)
					}
				}
			}
			if last && f.ep != nil {
				applyEpilogue(f.ep, c, f.ldc, i0, i0+rows, j0, j0+cols)
			}
		}
	}
}

// gemmFused runs batch GEMMs (strides as GemmStrided; batch 1 for one)
// through the fused driver; beta is 0 or 1 (callers scale C first).
func gemmFused(w *gemmWork, transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int, ep *Epilogue, pre *PackedB) {
	w.kr = uk
	f := &w.fused
	*f = fusedTask{kr: &w.kr, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
		a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc, strideA: strideA, strideB: strideB, strideC: strideC,
		accum: beta != 0, ep: ep, pre: pre}
	// Row-major B panels are read in place when their rows are short
	// (see gemm for why long rows are not).
	f.bInPlace = pre == nil && !transB && alpha == 1 && ldb < 512 && !noBInPlace
	t := threads
	f.plan(batch, t)
	slots := min(t, f.items)
	needBuf := pre == nil
	if needBuf {
		f.bufs = growF32(&w.bpack, slots*w.kr.kc*w.kr.nr)
	}
	parallelRun(slots, 1, 1, f)
	f.a, f.b, f.c, f.ep, f.pre, f.bufs = nil, nil, nil, nil, nil, nil
}
