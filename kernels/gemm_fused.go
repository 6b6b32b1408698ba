package kernels

import "sync/atomic"

// The fused driver: one parallel region per call for the GEMMs whose
// per-call overheads dominate on 2 cores (M up to a couple of L2 blocks:
// batch-1 Linears, attention heads, weight gradients; or B prepacked).
// The blocked driver of gemm_driver.go runs a packing region and a tile region
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
		// Claim one item ahead so that its B panel can be prefetched
		// while this one computes; near the end, claim lazily so that no
		// thread sits on an item another could start.
		cur := f.claim()
		for cur < f.items {
			nxt := f.items
			if int(f.next.Load())+threads < f.items {
				nxt = f.claim()
			}
			f.item(cur, nxt, buf)
			if nxt == f.items {
				nxt = f.claim()
			}
			cur = nxt
		}
	}
}

func (f *fusedTask) claim() int { return min(int(f.next.Add(1)-1), f.items) }

// coords splits an item number into matrix, A block and B panel.
func (f *fusedTask) coords(it int) (mat, ib, jb int) {
	return it / (f.npb * f.nab), it / f.npb % f.nab, it % f.npb
}

// prefetcher issues the L2 prefetch of one B panel slice in pieces: nseg
// segments of lines cache lines each, lineStride bytes apart within a
// segment, segStride bytes between segments.
type prefetcher struct {
	base                  []float32
	nseg, lines           int
	lineStride, segStride int // in floats
	done                  int
}

// plan sets p to the B data that slice pc of panel jb of matrix mat reads
// (the source rows when the panel is packed per slice), or to nothing.
func (f *fusedTask) prefetchPlan(p *prefetcher, mat, jb, pc int) {
	*p = prefetcher{}
	if jb < 0 || pc >= f.k {
		return
	}
	nr := f.kr.nr
	kc := min(f.kr.kc, f.k-pc)
	j0 := jb * nr
	cols := min(nr, f.n-j0)
	switch {
	case f.pre != nil:
		// Contiguous: kc*nr floats, 16-line segments.
		off := (jb*f.pre.k + pc) * nr
		*p = prefetcher{base: f.pre.data[off : off+kc*nr], lines: 16, lineStride: 16, segStride: 256}
		p.nseg = (kc*nr + 255) / 256
	case f.transB:
		// Rows j0.. of the stored n x k B, columns pc..pc+kc: a segment
		// is one 16-float column band across the rows.
		b := f.b[mat*f.strideB:]
		*p = prefetcher{base: b[j0*f.ldb+pc:], lines: cols, lineStride: f.ldb, segStride: 16, nseg: (kc + 15) / 16}
	default:
		// Rows pc.. of the k x n B, columns j0..j0+cols.
		b := f.b[mat*f.strideB:]
		*p = prefetcher{base: b[pc*f.ldb+j0:], lines: kc, lineStride: f.ldb, segStride: 16, nseg: (cols + 15) / 16}
	}
}

// step issues the next segs segments.
func (p *prefetcher) step(segs int) {
	for ; segs > 0 && p.done < p.nseg; segs-- {
		prefetchL2(&p.base[p.done*p.segStride], p.lines, 4*p.lineStride)
		p.done++
	}
}

// item computes item it: column panel jb of C over A panels
// [ib*ablk, ...) of matrix mat, all k slices; nxt is the item this thread
// runs next (f.items for none), whose first B slice is prefetched during
// the last slice of this one.
func (f *fusedTask) item(it, nxt int, buf []float32) {
	mat, ib, jb := f.coords(it)
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
	// The kernel adds bias and residual to exact tiles as it stores their
	// last slice; what is left of the epilogue runs on the panel after.
	var inK kernelEp
	if f.ep != nil && exact && !noKernelEp {
		inK = kernelEpFor(f.ep, f.accum)
	}
	var scratch [16 * 32]float32
	var pf prefetcher
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
				scaleSerial(pb, f.alpha, pb)
			}
			bptr = &pb[0]
		}
		acc := 0
		if f.accum || pc > 0 {
			acc = 1
		}
		last := pc+kc == f.k
		switch {
		case noPrefetch:
			pf = prefetcher{}
		case !last:
			f.prefetchPlan(&pf, mat, jb, pc+kc)
		case nxt < f.items:
			nmat, _, njb := f.coords(nxt)
			f.prefetchPlan(&pf, nmat, njb, 0)
		default:
			pf = prefetcher{}
		}
		per := (pf.nseg + (ia1 - ia0) - 1) / max(1, ia1-ia0)
		for ia := ia0; ia < ia1; ia++ {
			pf.step(per)
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
				var bias, res *float32
				if last {
					if inK.bias {
						bias = &f.ep.Bias[j0]
					}
					if inK.res {
						res = &f.ep.Residual[i0*f.ldc+j0]
					}
				}
				kernelAVX512Rows(direct, rows, nv, kc, ap, f.lda, bptr, bs, &c[i0*f.ldc+j0], f.ldc, acc, bias, res)
			} else {
				kernelAVX512Rows(direct, rows, nv, kc, ap, f.lda, bptr, bs, &scratch[0], 16*nv, 0, nil, nil)
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
		}
		if last && f.ep != nil {
			// The item's column panel of C, still in L1/L2, in one pass.
			applyEpilogueRest(f.ep, inK, c, f.ldc, ia0*mr, min(ia1*mr, f.m), j0, j0+cols)
		}
	}
}

// gemmFused runs batch GEMMs (strides as GemmStrided; batch 1 for one)
// through the fused driver; beta is 0 or 1 (callers scale C first).
func gemmFused(w *gemmWork, transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int, ep *Epilogue, pre *PackedB) {
	w.kr = uk
	w.kr.kc = w.kr.sliceK(max(m, w.mAll), k, transA)
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

// noKernelEp keeps bias and residual out of the kernels' stores (for
// comparisons in tests and benchmarks).
var noKernelEp bool

// noPrefetch disables the B panel prefetch (for comparisons in tests).
var noPrefetch bool
