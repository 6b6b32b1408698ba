package kernels

import (
	"unsafe"
)

// gemmWork holds one call's packing buffers; pooled so steady-state calls
// do not allocate, and per call so concurrent GEMMs never share them.
type gemmWork struct {
	apack, bpack, tmp []float32
	kr                ukernel
	ep                Epilogue
	gv                gemvTask
	pack              packTask
	blk               tileBlock
	fused             fusedTask
	qgv               qgemvTask // GemvQ
	xb                []uint16  // GemvQ's x in bf16
	deq               []float32 // GemmQ's dequantized strip
	dq                dequantJob
	x16               []int16   // GemvQ's x in int16 ...
	xs                []float32 // ... and its scales
	mAll              int       // GemmPackedRows: the whole product's rows (its k slices)
}

// workFree holds the GEMM's call buffers between calls.
var workFree FreeList[gemmWork]

func getWork() *gemmWork { return workFree.Get() }

func putWork(w *gemmWork) { workFree.Put(w) }

// growF32 returns (*s)[:n], reallocating only when capacity is short, on
// a 64-byte aligned backing array (growAligned).
func growF32(s *[]float32, n int) []float32 { return growAligned(s, n) }

// growAligned returns (*s)[:n], reallocating only when capacity is short.
// Packed panels and converted operands are read with 64-byte vector loads,
// so the backing array is aligned to 64 bytes.
func growAligned[T float32 | uint16](s *[]T, n int) []T {
	if cap(*s) < n {
		var zero T
		size := int(unsafe.Sizeof(zero))
		raw := make([]T, n+64/size)
		off := 0
		if r := uintptr(unsafe.Pointer(&raw[0])) & 63; r != 0 {
			off = int(64-r) / size
		}
		*s = raw[off : off+n : off+n]
	}
	return (*s)[:n]
}

// gemm is the shared driver; arguments are already checked.
func gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, ep *Epilogue) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		if ep != nil {
			applyEpilogue(ep, c, ldc, 0, m, 0, n)
		}
		return
	}
	w := getWork()
	defer putWork(w)
	var epw *Epilogue
	if ep != nil {
		// The caller's Epilogue may live on its stack; the tasks keep a
		// pointer to this copy instead, so nothing escapes per call.
		w.ep = *ep
		epw = &w.ep
	}
	if m == 1 && transB && uk.hasDot4 && (!transA || lda == 1) {
		w.gv = gemvTask{k: k, alpha: alpha, beta: beta, x: a, ep: epw}
		w.gv.add(b, ldb, c[:n])
		w.gv.start()
		w.gv = gemvTask{}
		w.ep = Epilogue{}
		return
	}
	if beta != 0 && beta != 1 {
		scaleC(m, n, beta, c, ldc)
		beta = 1
	}
	if fusedOK(&uk, m, false) && !noFused {
		gemmFused(w, transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, epw, nil)
		w.ep = Epilogue{}
		return
	}
	w.kr = uk
	kr := &w.kr
	kr.kc = kr.sliceK(m, k, transA)
	ncMax := min(kr.nc, roundUp(n, kr.nr))
	kcMax := min(kr.kc, k)
	amode := aPacked
	switch {
	case alpha != 1 || kr.kind == kernelGo:
	case !transA && kr.directA:
		amode = aRows
	case transA:
		amode = aCols
	}
	direct := amode != aPacked
	// A row-major B can feed the kernel in place: no packing pass, and its
	// loads overlap the FMAs instead of running as a separate phase. That
	// wins when each B panel serves few A panels (M <= 2 row blocks: the
	// weight gradients dy^T x with k in the thousands gained 10-40 %) and
	// B's rows are short, so a kc x 32 panel spreads over many cache sets.
	// With many A panels (M in the thousands) the packed, L1-resident
	// panel is faster, as it is when rows of 2 KiB and more make the
	// panel's rows collide in a few L1/L2 sets (1024^3).
	bInPlace := !transB && kr.kind == kernelAVX512 && ldb < 512 && m <= 2*kr.mc && !noBInPlace
	mcMax := min(kr.mc, roundUp(m, kr.mr))
	// A single row block when M is small: one packing pass instead of two.
	// Also when A is read in place: nothing of A is packed per block, so
	// the tile loop blocks M for L2 itself and the whole M is one parallel
	// region, without a barrier per row block.
	if m <= 2*kr.mc || direct {
		mcMax = roundUp(m, kr.mr)
	}
	apackLen := mcMax * kcMax
	if direct {
		apackLen = kr.mr * kcMax // only the partial last panel is packed
	}
	pk := &w.pack
	*pk = packTask{kr: kr, transA: transA, transB: transB, direct: direct, a: a, lda: lda, b: b, ldb: ldb, alpha: alpha,
		apack: growF32(&w.apack, apackLen), bpack: growF32(&w.bpack, ncMax*kcMax)}
	blk := &w.blk
	pk.bInPlace = bInPlace
	*blk = tileBlock{kr: kr, apack: pk.apack, bpack: pk.bpack, c: c, ldc: ldc, amode: amode, a: a, lda: lda,
		bInPlace: bInPlace, b: b, ldb: ldb}
	for jc := 0; jc < n; jc += kr.nc {
		nc := min(kr.nc, n-jc)
		npb := (nc + kr.nr - 1) / kr.nr
		for pc := 0; pc < k; pc += kr.kc {
			kc := min(kr.kc, k-pc)
			for ic := 0; ic < m; ic += mcMax {
				mc := min(mcMax, m-ic)
				npa := (mc + kr.mr - 1) / kr.mr
				// Pack A (and, first time in this k slice, B), split over panels.
				pk.ic, pk.mc, pk.npa, pk.pc, pk.kc, pk.jc, pk.nc = ic, mc, npa, pc, kc, jc, nc
				pk.npb, pk.bgroups, pk.packB = npb, min(npb, 4*threads), ic == 0
				if direct && (mc%kr.mr == 0 || kr.kind == kernelAVX512) {
					pk.npa = 0 // nothing of A to pack (AVX-512 has edge kernels)
				}
				blk.ablk = max(1, kr.mc/kr.mr)
				nblocks := (npa + blk.ablk - 1) / blk.ablk
				split := splitM
				switch {
				case nblocks >= 4*threads:
					split = splitBlocks
				case splitOverN(npa, npb, threads):
					split = splitN
				}
				// Split over B panels with nothing of A to pack, each thread
				// packs the panels it then multiplies: one region per k
				// slice instead of two, and no packed panel crosses cores.
				blk.packer = nil
				if split == splitN && pk.packB && pk.npa == 0 {
					blk.packer = pk
				} else if tot := pk.tasks(); tot > 0 {
					parallelRun(tot, 1, 4, pk)
				}
				blk.pc = pc
				blk.kc, blk.mc, blk.nc, blk.ic, blk.jc, blk.npa, blk.npb = kc, mc, nc, ic, jc, npa, npb
				blk.accum = pc > 0 || beta != 0
				blk.ep = nil
				if pc+kc == k {
					blk.ep = epw
				}
				blk.split = split
				switch split {
				case splitBlocks:
					// Many row blocks: threads claim whole blocks one at a
					// time, so a preempted thread's share is taken over.
					parallelRun(nblocks, 1, nblocks, blk)
				case splitN:
					parallelRun(npb, 1, 1, blk)
				default:
					parallelRun(npa, 1, 1, blk)
				}
			}
		}
	}
	pk.a, pk.b, blk.c, blk.ep, blk.a, blk.b, blk.packer = nil, nil, nil, nil, nil, nil, nil
	w.ep = Epilogue{}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// splitOverN reports whether splitting the B panels balances the threads at
// least as well as splitting the A panels.
func splitOverN(npa, npb, t int) bool {
	if t <= 1 {
		return true
	}
	// Work of the busiest thread, in tiles, for each split.
	byN := (npb + t - 1) / t * npa
	byM := (npa + t - 1) / t * npb
	return byN <= byM
}

// aMode says where the microkernel reads full A panels from.
type aMode int

const (
	aPacked aMode = iota // packed panels (alpha folded in, or no in-place kernel)
	aRows                // row-major A in place (sgemmKernelAVX512DA)
	aCols                // transposed A in place: step p of the panel is row p
)

type tileBlock struct {
	kr           *ukernel
	kc, mc, nc   int
	ic, jc       int
	npa, npb     int
	apack, bpack []float32
	c            []float32
	ldc          int
	accum        bool
	ep           *Epilogue
	split        splitKind // what the parallel range indexes
	ablk         int       // A panels per L2 block in the tile loop
	amode        aMode     // how full A panels are read
	bInPlace     bool      // full B panels are read from b (row-major) in place
	b            []float32
	ldb          int
	a            []float32
	lda, pc      int
	packer       *packTask // splitN: pack the range's B panels first
}

// splitKind says how a tile loop is shared among threads.
type splitKind int

const (
	splitN      splitKind = iota // ranges of B panels, all A panels each
	splitM                       // ranges of A panels, all B panels each
	splitBlocks                  // L2 blocks of A panels, claimed one by one
)

func (t *tileBlock) run(lo, hi int) {
	switch t.split {
	case splitN:
		if t.packer != nil {
			t.packer.packPanels(lo, hi)
		}
		t.tiles(0, t.npa, lo, hi)
	case splitM:
		t.tiles(lo, hi, 0, t.npb)
	default:
		t.tiles(lo*t.ablk, min(hi*t.ablk, t.npa), 0, t.npb)
	}
}

// tiles computes the tiles of A panels [ia0, ia1) x B panels [jb0, jb1),
// B-panel-major so that each B panel stays in L1 across the A panels.
func (t *tileBlock) tiles(ia0, ia1, jb0, jb1 int) {
	var scratch [16 * 32]float32
	acc := 0
	if t.accum {
		acc = 1
	}
	// A panels in L2-sized blocks; within a block each B panel stays in L1
	// while the block's A panels stream past it from L2.
	for ib := ia0; ib < ia1; ib += t.ablk {
		t.block(ib, min(ib+t.ablk, ia1), jb0, jb1, acc, &scratch)
	}
}

func (t *tileBlock) block(ia0, ia1, jb0, jb1, acc int, scratch *[16 * 32]float32) {
	kr := t.kr
	mr, nr := kr.mr, kr.nr
	for jb := jb0; jb < jb1; jb++ {
		j0 := t.jc + jb*nr
		cols := min(nr, t.nc-jb*nr)
		bp := t.bpack[jb*nr*t.kc:]
		bptr, bs := &bp[0], nr
		if t.bInPlace && cols == nr {
			bptr, bs = &t.b[t.pc*t.ldb+j0], t.ldb
		}
		for ia := ia0; ia < ia1; ia++ {
			i0 := t.ic + ia*mr
			rows := min(mr, t.mc-ia*mr)
			ct := t.c[i0*t.ldc+j0:]
			ldc, accTile := t.ldc, acc
			if kr.kind == kernelAVX512 {
				t.tileAVX512(ia, i0, rows, j0, cols, bptr, bs, acc, scratch)
				continue
			}
			if rows < mr || cols < nr {
				// Edge tile: compute into scratch, then copy the valid part.
				ct, ldc, accTile = scratch[:mr*nr], nr, 0
			}
			switch {
			case rows == mr && t.amode == aRows:
				callKernelDA(t.kc, &t.a[i0*t.lda+t.pc], t.lda, bptr, bs, &ct[0], ldc, accTile)
			case rows == mr && t.amode == aCols:
				callKernel(kr.kind, t.kc, &t.a[t.pc*t.lda+i0], t.lda, bptr, bs, &ct[0], ldc, accTile)
			case kr.kind != kernelGo:
				ap := t.apack // with direct A, the partial panel is the only one
				if t.amode == aPacked {
					ap = t.apack[ia*mr*t.kc:]
				}
				callKernel(kr.kind, t.kc, &ap[0], mr, bptr, bs, &ct[0], ldc, accTile)
			default:
				kernelGo4x4(t.kc, t.apack[ia*mr*t.kc:], bp, ct, ldc, accTile != 0)
			}
			if rows < mr || cols < nr {
				t.addTile(ct, i0, rows, j0, cols)
			}
			if t.ep != nil {
				applyEpilogue(t.ep, t.c, t.ldc, i0, i0+rows, j0, j0+cols)
			}
		}
	}
}

// tileAVX512 computes one tile with the AVX-512 kernel of its exact height
// (and width 16 when at most 16 columns are left), into C, or into scratch
// when the width is not a multiple of 16; A in place or packed.
func (t *tileBlock) tileAVX512(ia, i0, rows, j0, cols int, bptr *float32, bs, acc int, scratch *[16 * 32]float32) {
	nv := 2
	if cols <= 16 {
		nv = 1
	}
	var ap *float32
	direct, as := false, t.lda
	switch t.amode {
	case aRows:
		ap, direct = &t.a[i0*t.lda+t.pc], true
	case aCols:
		ap = &t.a[t.pc*t.lda+i0]
	default:
		ap, as = &t.apack[ia*t.kr.mr*t.kc], t.kr.mr
	}
	if cols == 16*nv {
		kernelAVX512Rows(direct, rows, nv, t.kc, ap, as, bptr, bs, &t.c[i0*t.ldc+j0], t.ldc, acc, nil, nil)
	} else {
		w := 16 * nv
		kernelAVX512Rows(direct, rows, nv, t.kc, ap, as, bptr, bs, &scratch[0], w, 0, nil, nil)
		for i := 0; i < rows; i++ {
			ci := t.c[(i0+i)*t.ldc+j0 : (i0+i)*t.ldc+j0+cols]
			ti := scratch[i*w : i*w+cols]
			if acc != 0 {
				for j, v := range ti {
					ci[j] += v
				}
			} else {
				copy(ci, ti)
			}
		}
	}
	if t.ep != nil {
		applyEpilogue(t.ep, t.c, t.ldc, i0, i0+rows, j0, j0+cols)
	}
}

// addTile stores (or, when accumulating, adds) the valid rows x cols of a
// scratch tile into C.
func (t *tileBlock) addTile(tile []float32, i0, rows, j0, cols int) {
	nr := t.kr.nr
	for i := 0; i < rows; i++ {
		ci := t.c[(i0+i)*t.ldc+j0 : (i0+i)*t.ldc+j0+cols]
		ti := tile[i*nr : i*nr+cols]
		if t.accum {
			for j, v := range ti {
				ci[j] += v
			}
		} else {
			copy(ci, ti)
		}
	}
}

// kcLong bounds the k slices of sliceK for tall products; kcShort the
// single slice of short ones.
const (
	kcLong  = 1024
	kcShort = 2048
)

// sliceK is the depth of the k slices of an m x k product: kr.kc, except
// on the AVX-512 path for M beyond two L2 blocks, where it is the fewest
// slices of at most kcLong, of equal depth. C is read and written once
// per slice, and for M in the thousands that traffic to L3 cost more than
// reading a 32-wide B panel of up to 128 KiB from L2 instead of L1.
// Measured on 2026-12-06 (8 interleaved rounds, 2 threads): 1024^3 +2-5 %,
// 6304x768x192 (ViT batch-32 fc2) +10 %, 2048x768x768 +9 %, no change
// where k <= 256. Both drivers take their slices from here, so the sums
// are formed in the same order whichever runs (GemmPacked gives Gemm's
// bits).
//
// Short products (M up to two L2 blocks, the fused driver's batch-1
// Linears) with A read by rows take all of k up to kcShort in one slice:
// their C tile is then stored once instead of once per 256 steps, and the
// 32-wide B panel (up to 256 KiB) streams from L2 while the tile's twelve
// A rows run on. Measured 2026-12-07 (same binary, slices switched by an
// environment variable, alternating): DeiT-Small's fc2 (197x1536x384)
// 0.95x the time alone, whole batch-1 forwards of DeiT-Tiny and -Small
// 0.97-0.98x; the K = 384 Linears unchanged. Transposed A (weight
// gradients, k = rows of the batch) keeps kr.kc.
func (kr *ukernel) sliceK(m, k int, transA bool) int {
	if kr.kind != kernelAVX512 || k <= kr.kc {
		return kr.kc
	}
	if m <= 2*kr.mc {
		if !transA && k <= kcShort {
			return k
		}
		return kr.kc
	}
	s := (k + kcLong - 1) / kcLong
	return (k + s - 1) / s
}

// noBInPlace disables reading B in place (for comparisons in tests).
var noBInPlace bool

// noFused disables the fused driver (for comparisons in tests).
var noFused bool
