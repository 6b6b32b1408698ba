package kernels

import (
	"sync/atomic"
	"unsafe"
)

// The bf16 GEMM: C = epilogue(A W^T) for W stored in bf16, computed on
// bf16 by VDPBF16PS where the CPU has AVX512_BF16 (32 multiply-adds per
// instruction against the float32 FMA's 16). W is packed once, on first
// use, into panels of 32 output columns whose k step t holds the 32 bf16
// pairs (w[j][2t], w[j][2t+1]) (k padded to even with a zero), and kept
// with the matrix. A is rounded to bf16 (to nearest even) row by row per
// call, inside the parallel region that then multiplies those rows, so
// the call is one fork/join. The 12x32 register tile (gen/gemmbf16.go)
// broadcasts one bf16 pair of a row per k pair.
//
// Memory: the packed panels are a second copy of the weights beside the
// row-major BF16 that GEMVs and checkpoints read, so a matrix that has run
// a GEMM (2+ rows: a batch, an LM prompt) holds its bf16 weights twice:
// lm_60m's resident set after an 8-token forward went from 160 to 244 MB
// (tools/quantmem), level with float32. Language models therefore mark
// their Linears (nn.MarkDecode) so that prompts take GemmQStrips, the
// dequantizing path, and only evaluation batches pack (lm_60m's bf16 file
// stays at 160 MB); SetBF16Gemm(false) avoids packing everywhere. A
// single layout (decode GEMVs reading the panels, or this GEMM reading W
// in place as the broadcast operand of C^T = W A^T) would remove it.
//
// Accuracy: the products of two bf16 are exact in float32 and summed in
// float32, so the result is the float32 GEMM of W and bf16(A): A carries
// ~3 significant digits (relative rounding <= 2^-9). Each C element's
// pairs are added in k order in one accumulator lane, k sliced at fixed
// depths, whatever the tile or thread, so results are bit-identical for
// any thread count.

// bf16MR and bf16NR are the register tile: rows of A by columns of W.
const bf16MR, bf16NR = 12, 32

// bf16KC is the depth of a k slice in pairs: a 32-column W panel slice of
// 384 k (24 KiB) stays in L1 while the A panels of a block pass it.
const bf16KC = 192

// bf16Block is the number of A panels (of 12 rows) multiplied against
// each W panel slice before the next one: ~110 KiB of A per k slice, in
// L2.
const bf16Block = 16

// bf16Rows caps the rows of A converted per parallel region, which bounds
// the converted copy (bf16Rows x k bf16) for batches of thousands of rows.
const bf16Rows = 96 * bf16MR

// useBF16Gemm selects the VDPBF16PS GEMM for bf16 weights; see
// SetBF16Gemm.
var useBF16Gemm = true

// SetBF16Gemm makes GemmQ with bf16 weights round the activations to bf16
// and multiply with VDPBF16PS where the CPU has AVX512_BF16 (on: true, the
// default), or dequantize the weights and run the float32 GEMM (false:
// exact activations, the result GemmEpilogue gives on the widened
// weights); it returns the previous setting. Not safe to call while
// kernels run.
func SetBF16Gemm(on bool) (prev bool) {
	prev, useBF16Gemm = useBF16Gemm, on
	return prev
}

// bf16GemmOK reports whether GemmQ runs an m-row product with q on the
// VDPBF16PS kernels. One row stays on GemvQ (it streams the row-major
// weights and needs no packed copy) unless an epilogue needs the GEMM.
func bf16GemmOK(q *QMatrix, m int, ep *Epilogue) bool {
	if q.Dtype != BF16 || !useBF16Gemm || !hasBF16 || curPath != PathAVX512 || q.K == 0 {
		return false
	}
	return m > 1 || ep.Act != ActNone || ep.Residual != nil || ep.Accumulate
}

// bf16Panels is W [N, K] packed for the kernel: panel jb (columns
// 32jb..32jb+31, zero past N) starts at p[jb*kp*32], its pair t at
// p[(jb*kp+t)*32:], each uint32 the bf16 pair (w[j][2t], w[j][2t+1]).
type bf16Panels struct {
	src      *uint16 // &BF16[0] of the matrix packed
	n, k, kp int
	p        []uint32
}

// bf16Cache holds a matrix's packed panels once built. A plain pointer
// read and written atomically rather than an atomic.Pointer, so that a
// QMatrix stays copyable; the panels record the weights they were packed
// from, so a copy given other weights packs its own.
type bf16Cache struct{ p *bf16Panels }

func (c *bf16Cache) load() *bf16Panels {
	return (*bf16Panels)(atomic.LoadPointer((*unsafe.Pointer)(unsafe.Pointer(&c.p))))
}

func (c *bf16Cache) store(pk *bf16Panels) {
	atomic.StorePointer((*unsafe.Pointer)(unsafe.Pointer(&c.p)), unsafe.Pointer(pk))
}

// bf16Pack returns q's packed panels, packing on first use (and when q's
// weights are not those packed). The weights must not change in place
// after a bf16 GEMM used them.
func (q *QMatrix) bf16Pack() *bf16Panels {
	src := unsafe.SliceData(q.BF16)
	if pk := q.bf16p.load(); pk != nil && pk.src == src && pk.n == q.N && pk.k == q.K {
		return pk
	}
	n, k := q.N, q.K
	kp := (k + 1) / 2
	npb := (n + bf16NR - 1) / bf16NR
	// On huge pages like the stored weights (weightBytes): in this VM a
	// first touch of a 4 KiB page cost ~10 us, most of packing's time.
	raw := weightBytes(4 * npb * kp * bf16NR)
	pk := &bf16Panels{src: src, n: n, k: k, kp: kp, p: unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw)/4)}
	ParallelFor(npb, 1, func(lo, hi int) {
		var rows [bf16NR][]uint16
		for jb := lo; jb < hi; jb++ {
			panel := pk.p[jb*kp*bf16NR : (jb+1)*kp*bf16NR]
			cols := min(bf16NR, n-jb*bf16NR)
			for j := range cols {
				rows[j] = q.BF16[(jb*bf16NR+j)*k : (jb*bf16NR+j+1)*k]
			}
			// Blocks of 16 pairs: each row's 64 bytes are read once into
			// a 2 KiB stretch of the panel. (Whole columns, or whole pair
			// rows across the 32 rows, thrash L1: rows k*2 bytes apart
			// share a few sets; ~7 ns a weight for k = 1024 against 0.5.)
			for tb := 0; tb < k/2; tb += 16 {
				te := min(tb+16, k/2)
				for j := range cols {
					r := rows[j][2*tb : 2*te]
					for t := range te - tb {
						panel[(tb+t)*bf16NR+j] = uint32(r[2*t]) | uint32(r[2*t+1])<<16
					}
				}
			}
			if k%2 == 1 {
				d := panel[(kp-1)*bf16NR : (kp-1)*bf16NR+cols]
				for j := range d {
					d[j] = uint32(rows[j][k-1])
				}
			}
		}
	})
	q.bf16p.store(pk)
	return pk
}

// bf16Work holds one call's converted A and task, kept between calls in
// a FreeList like gemmWork.
type bf16Work struct {
	ab   []uint16
	tmp  []float32
	task bf16Task
	ep   Epilogue
}

var bf16Free FreeList[bf16Work]

func getBF16Work() *bf16Work { return bf16Free.Get() }

func putBF16Work(w *bf16Work) {
	w.task = bf16Task{}
	w.ep = Epilogue{}
	bf16Free.Put(w)
}

// gemmBF16 computes C = epilogue(A W^T) for bf16 W on the VDPBF16PS
// kernels (bf16GemmOK holds); arguments are checked and ep validated.
func gemmBF16(m int, a []float32, lda int, q *QMatrix, c []float32, ldc int, ep Epilogue) {
	w := getBF16Work()
	defer putBF16Work(w)
	n := q.N
	if ep.Accumulate && ep.Act != ActNone {
		// The activation must not see the old C: form the product in a
		// scratch matrix, then add (as GemmEpilogue).
		inner := ep
		inner.Accumulate, inner.Residual = false, nil
		tmp := growF32(&w.tmp, m*n)
		w.ep = inner
		bf16Run(w, m, a, lda, q.bf16Pack(), tmp, n, &w.ep, false)
		addInto(m, n, c, ldc, tmp, ep.Residual)
		return
	}
	w.ep = ep
	var epp *Epilogue
	if ep.active() {
		epp = &w.ep
	}
	bf16Run(w, m, a, lda, q.bf16Pack(), c, ldc, epp, ep.Accumulate)
}

// bf16Run runs the product over row blocks of at most bf16Rows, each one
// parallel region.
func bf16Run(w *bf16Work, m int, a []float32, lda int, pk *bf16Panels, c []float32, ldc int, ep *Epilogue, accum bool) {
	la := bf16Stride(pk.kp)
	t := &w.task
	for r0 := 0; r0 < m; r0 += bf16Rows {
		rows := min(bf16Rows, m-r0)
		*t = bf16Task{m: rows, a: a[r0*lda:], lda: lda, pk: pk, c: c, ldc: ldc, r0: r0, ep: ep, accum: accum,
			ab: growAligned(&w.ab, rows*la), la: la}
		t.npa = (rows + bf16MR - 1) / bf16MR
		t.npb = (pk.n + bf16NR - 1) / bf16NR
		if t.npa < threads {
			// Too few row panels to share: convert A here and split the
			// W panels instead.
			t.byN = true
			t.convert(0, t.npa)
			parallelRun(t.npb, 1, 1, t)
		} else {
			// One contiguous range of row panels per thread: each W panel
			// slice read from L2/L3 serves as many panels as possible
			// (finer chunks measured no better on batch-1 shapes).
			parallelRun(t.npa, 1, 1, t)
		}
	}
	*t = bf16Task{}
}

// bf16Stride is the row stride (in bf16) of converted A for kp pairs: 2kp
// rounded up to 32 (whole cache lines), plus a line when that is a
// multiple of 2 KiB so that the 12 rows of a panel do not share L1 sets.
func bf16Stride(kp int) int {
	la := roundUp(2*kp, 32)
	if la%1024 == 0 {
		la += 32
	}
	return la
}

// bf16Task is one row block of the product: A rows converted to bf16 in
// ab (row stride la), then tiles of 12 rows x 32 columns.
type bf16Task struct {
	m, r0    int
	a        []float32
	lda      int
	pk       *bf16Panels
	c        []float32 // all of C; this block's row i is C's row r0+i
	ldc      int
	ep       *Epilogue // applied to finished tiles
	accum    bool      // add the product to C
	ab       []uint16
	la       int
	npa, npb int
	byN      bool // the range indexes W panels; A is converted up front
}

func (t *bf16Task) run(lo, hi int) {
	if t.byN {
		t.tiles(0, t.npa, lo, hi)
		return
	}
	t.convert(lo, hi)
	t.tiles(lo, hi, 0, t.npb)
}

// convert rounds the rows of A panels [ia0, ia1) to bf16 into ab: whole
// runs of 32 by VCVTNE2PS2BF16, the rest by toBF16DAZ (the same rounding,
// denormals included), and a zero past an odd k.
func (t *bf16Task) convert(ia0, ia1 int) {
	k := t.pk.k
	k32 := k &^ 31
	for i := ia0 * bf16MR; i < min(ia1*bf16MR, t.m); i++ {
		src := t.a[i*t.lda : i*t.lda+k]
		dst := t.ab[i*t.la : i*t.la+2*t.pk.kp]
		if k32 > 0 {
			cvtBF16AVX512(k32, &src[0], &dst[0])
		}
		for p := k32; p < k; p++ {
			dst[p] = toBF16DAZ(src[p])
		}
		if k%2 == 1 {
			dst[k] = 0
		}
	}
}

// toBF16DAZ is ToBF16 with denormal inputs taken as zero, as
// VCVTNE2PS2BF16 takes them, so every element of A rounds alike.
func toBF16DAZ(f float32) uint16 {
	b := *(*uint32)(unsafe.Pointer(&f))
	if b&0x7f800000 == 0 {
		return uint16(b>>16) & 0x8000
	}
	return ToBF16(f)
}

// tiles multiplies A panels [ia0, ia1) by W panels [jb0, jb1): per block
// of bf16Block A panels and per k slice, each W panel slice stays in L1
// while the block's A panels pass it. The epilogue runs on each 32-column
// strip of a block after its last slice, while the strip is in cache.
func (t *bf16Task) tiles(ia0, ia1, jb0, jb1 int) {
	var scratch [bf16MR * bf16NR]float32
	pk := t.pk
	kp, n := pk.kp, pk.n
	for ib := ia0; ib < ia1; ib += bf16Block {
		ie := min(ib+bf16Block, ia1)
		for pc := 0; pc < kp; pc += bf16KC {
			kc := min(bf16KC, kp-pc)
			last := pc+kc == kp
			acc := 0
			if pc > 0 || t.accum {
				acc = 1
			}
			for jb := jb0; jb < jb1; jb++ {
				j0 := jb * bf16NR
				cols := min(bf16NR, n-j0)
				bp := &pk.p[(jb*kp+pc)*bf16NR]
				for ia := ib; ia < ie; ia++ {
					i0 := ia * bf16MR
					rows := min(bf16MR, t.m-i0)
					ap := &t.ab[i0*t.la+2*pc]
					ci0 := t.r0 + i0
					if cols == bf16NR {
						callGemmBF16(rows, kc, ap, t.la, bp, &t.c[ci0*t.ldc+j0], t.ldc, acc)
					} else {
						callGemmBF16(rows, kc, ap, t.la, bp, &scratch[0], bf16NR, 0)
						for i := 0; i < rows; i++ {
							ci := t.c[(ci0+i)*t.ldc+j0 : (ci0+i)*t.ldc+j0+cols]
							si := scratch[i*bf16NR : i*bf16NR+cols]
							if acc != 0 {
								for j, v := range si {
									ci[j] += v
								}
							} else {
								copy(ci, si)
							}
						}
					}
				}
				if last && t.ep != nil {
					// Once per column strip of the block, not per tile: the
					// call cost about as much as a tile's product (as the
					// int8 GEMM measured).
					r0 := t.r0 + ib*bf16MR
					applyEpilogue(t.ep, t.c, t.ldc, r0, t.r0+min(ie*bf16MR, t.m), j0, j0+cols)
				}
			}
		}
	}
}
