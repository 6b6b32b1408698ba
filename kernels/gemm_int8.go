package kernels

import (
	"encoding/binary"
	"math"
	"runtime"
	"sync"
	"unsafe"
	"weak"
)

// The int8 GEMM: C = epilogue(A W^T) for W stored as int8 (QMatrix,
// Dtype Int8) computed on 8-bit integers with VPDPBUSD, which does 64
// u8 x s8 multiply-adds per ZMM instruction where the float32 FMA does 16.
//
// Accuracy contract: A is quantized dynamically, each row per group of
// W's Group consecutive k (64 for the usual widths) to 8 bits: amax =
// max|a| over the group, scale_a = amax/127, code = a*127/amax rounded to
// nearest even, in [-127, 127]. So besides W's own quantization the
// product sees A to ~0.4 % of each group's largest value (the same
// dynamic quantization ONNX Runtime's and llama.cpp's int8 GEMMs make,
// finer grained). A group's int32 dot product of codes is exact; C is the
// float32 sum over groups of (float(dot) * scale_w) * scale_a, formed
// group by group in k order whatever the thread count or tile.
//
// The u8 x s8 instruction wants one operand unsigned: A's codes are
// stored as code + 128 (1..255), and the excess 128 * sum(w over the
// group) is taken off by starting each group's int32 accumulator at
// minus that sum, precomputed per column and group when W is packed. W
// is packed once per matrix (int8Pack, cached beside the QMatrix and
// dropped with it): 32-column panels, per group the 32 compensations and
// scales followed by the group's k in quads, 32 columns x 4 bytes each,
// the layout a ZMM load feeds VPDPBUSD with. A tile is up to 7 rows x 32
// columns (gen/gemmint8.go: 14 int32 group accumulators, 14 float32
// totals, 2 W vectors, 2 broadcasts).

// i8MR and i8NR are the int8 tile: rows (kernels exist for 1..i8MR) and
// the panel width.
const (
	i8MR = 7
	i8NR = 32
)

// i8MinWork is the smallest m*n*k sent to the int8 GEMM; below it the
// dequantizing path (GemvQ rows) is as fast. Measured on 2026-12-07:
// the int8 GEMM beats dequantize + float32 GEMM from m = 2 on every
// DeiT shape, so this only keeps tiny products off the packing.
const i8MinWork = 1 << 12

// noInt8GEMM sends int8 GEMMs to the dequantizing path (SetInt8Gemm).
var noInt8GEMM bool

// SetInt8Gemm makes GemmQ with int8 weights quantize the activations and
// multiply with VPDPBUSD where the CPU has AVX512_VNNI (on: true, the
// default), or dequantize the weights and run the float32 GEMM (false:
// exact activations, the result GemmEpilogue gives on the dequantized
// weights); it returns the previous setting. Not safe to call while
// kernels run.
func SetInt8Gemm(on bool) (prev bool) {
	prev, noInt8GEMM = !noInt8GEMM, !on
	return prev
}

// int8GemmOK reports whether GemmQ can run w through the int8 GEMM for m
// rows: an int8 matrix with groups of a multiple of 16 (the quantizer's
// and the kernel's step) on a CPU with AVX512_VNNI.
func int8GemmOK(m int, w *QMatrix) bool {
	return int8Asm() && !noInt8GEMM && w.Dtype == Int8 && m >= 2 && w.Group%16 == 0 && w.Group > 0 &&
		m*w.N*w.K >= i8MinWork
}

// int8Pack is W packed for the int8 kernels.
type int8Pack struct {
	n, k, group, ng int
	np              int    // panels of i8NR columns
	panel           int    // bytes per panel
	data            []byte // np panels, 64-byte aligned
	src             *byte  // &Q[0] packed from (a QMatrix is immutable once used)
}

// i8GroupBytes is one group of one panel: 32 compensations, 32 scales,
// group/4 quads of 32 x 4 bytes.
func i8GroupBytes(group int) int { return 256 + group*i8NR }

// packInt8 packs q (Dtype Int8, Group a multiple of 4).
func packInt8(q *QMatrix) *int8Pack {
	n, k, g := q.N, q.K, q.Group
	p := &int8Pack{n: n, k: k, group: g, ng: k / g, np: (n + i8NR - 1) / i8NR, src: &q.Q[0]}
	p.panel = p.ng * i8GroupBytes(g)
	p.data = alignedBytes(p.np * p.panel)
	rb := q.RowBytes()
	ParallelFor(p.np, 1, func(lo, hi int) {
		for jp := lo; jp < hi; jp++ {
			for gi := 0; gi < p.ng; gi++ {
				blk := p.data[jp*p.panel+gi*i8GroupBytes(g):]
				comp := unsafe.Slice((*int32)(unsafe.Pointer(&blk[0])), i8NR)
				scl := unsafe.Slice((*float32)(unsafe.Pointer(&blk[128])), i8NR)
				quads := blk[256 : 256+g*i8NR]
				for c := 0; c < i8NR && jp*i8NR+c < n; c++ {
					col := jp*i8NR + c
					src := q.Q[col*rb+gi*(g+4):][:g]
					var sum int32
					for _, v := range src {
						sum += int32(int8(v))
					}
					for qd := 0; qd < g/4; qd++ {
						binary.LittleEndian.PutUint32(quads[qd*4*i8NR+4*c:], binary.LittleEndian.Uint32(src[4*qd:]))
					}
					comp[c] = -128 * sum
					scl[c] = q.scaleAt(col, gi)
				}
			}
		}
	})
	return p
}

// alignedBytes returns n zeroed bytes starting on a 64-byte boundary, on
// huge pages where they span some (first-touch faults of 4 KiB pages cost
// 2/3 of packing a matrix here).
func alignedBytes(n int) []byte {
	raw := make([]byte, n+64)
	adviseHuge(unsafe.Pointer(&raw[0]), len(raw))
	off := 0
	if r := uintptr(unsafe.Pointer(&raw[0])) & 63; r != 0 {
		off = int(64 - r)
	}
	return raw[off : off+n : off+n]
}

// int8Packs caches each int8 matrix's packing, keyed weakly so the entry
// goes when the matrix does (a cleanup deletes it).
var int8Packs struct {
	mu sync.Mutex
	m  map[weak.Pointer[QMatrix]]*int8Pack
}

// int8PackOf returns q's packing, built on first use.
func int8PackOf(q *QMatrix) *int8Pack {
	key := weak.Make(q)
	int8Packs.mu.Lock()
	p, seen := int8Packs.m[key]
	int8Packs.mu.Unlock()
	if p != nil && p.src == &q.Q[0] && p.n == q.N && p.k == q.K && p.group == q.Group {
		return p
	}
	p = packInt8(q)
	int8Packs.mu.Lock()
	if int8Packs.m == nil {
		int8Packs.m = map[weak.Pointer[QMatrix]]*int8Pack{}
	}
	int8Packs.m[key] = p
	int8Packs.mu.Unlock()
	if !seen {
		runtime.AddCleanup(q, func(k weak.Pointer[QMatrix]) {
			int8Packs.mu.Lock()
			delete(int8Packs.m, k)
			int8Packs.mu.Unlock()
		}, key)
	}
	return p
}

// quantU8RowGo is quantU8RowAVX512 in Go: x (k floats) quantized per
// group into q (code + 128) with scale g at s[g*ss].
func quantU8RowGo(x []float32, k, group int, q []byte, s []float32, ss int) {
	for g := 0; g < k/group; g++ {
		xs := x[g*group : (g+1)*group]
		var bits uint32 // max |x| as bits: NaN above Inf, as the assembly
		for _, v := range xs {
			bits = max(bits, math.Float32bits(v)&0x7fffffff)
		}
		amax := math.Float32frombits(bits)
		s[g*ss] = amax / 127
		var inv float32
		if amax > 0 { // not for 0 or NaN (codes 0; a NaN scale makes the outputs NaN)
			inv = 127 / amax
		}
		for j, v := range xs {
			c := math.RoundToEven(float64(v * inv))
			q[g*group+j] = byte(int32(max(-128, min(127, c))) + 128)
		}
	}
}

// i8Job is one int8 GEMM call's shared state (in gemmWork: no
// allocation per call).
type i8Job struct {
	p        *int8Pack
	m        int
	a        []float32
	lda      int
	aq       []byte    // m rows of k u8 codes
	as       []float32 // scales [group][m]
	c        []float32
	ldc      int
	ep       *Epilogue
	accum    int
	mb       int // rows per M block (a multiple of i8MR)
	nmb      int // M blocks
	quantize bool
}

// run quantizes rows [lo, hi) (quantize) or computes tasks [lo, hi) of
// (M block, column panel), panel-major within a block.
func (j *i8Job) run(lo, hi int) {
	if j.quantize {
		k, g := j.p.k, j.p.group
		for i := lo; i < hi; i++ {
			quantU8Row(j.a[i*j.lda:i*j.lda+k], k, g, j.aq[i*k:(i+1)*k], j.as[i:], j.m)
		}
		return
	}
	var scratch [i8MR * i8NR]float32
	p := j.p
	for t := lo; t < hi; t++ {
		ib, jp := t/p.np, t%p.np
		j0 := jp * i8NR
		cols := min(i8NR, p.n-j0)
		w := &p.data[jp*p.panel]
		r0, r1 := ib*j.mb, min(j.m, (ib+1)*j.mb)
		for i0 := r0; i0 < r1; i0 += i8MR {
			rows := min(i8MR, j.m-i0)
			a, as := &j.aq[i0*p.k], &j.as[i0]
			if cols == i8NR {
				int8Tile(rows, p.ng, p.group/16, a, p.k, as, 4*j.m, w, &j.c[i0*j.ldc+j0], j.ldc, j.accum)
			} else {
				int8Tile(rows, p.ng, p.group/16, a, p.k, as, 4*j.m, w, &scratch[0], i8NR, 0)
				for r := 0; r < rows; r++ {
					ci := j.c[(i0+r)*j.ldc+j0 : (i0+r)*j.ldc+j0+cols]
					ti := scratch[r*i8NR : r*i8NR+cols]
					if j.accum != 0 {
						for x, v := range ti {
							ci[x] += v
						}
					} else {
						copy(ci, ti)
					}
				}
			}
		}
		if j.ep != nil {
			// Once per column strip of the block (still in L1/L2), not per
			// tile: the call cost as much as a small tile's product.
			applyEpilogue(j.ep, j.c, j.ldc, r0, r1, j0, j0+cols)
		}
	}
}

// quantU8Row runs the assembly quantizer where there is one.
func quantU8Row(x []float32, k, group int, q []byte, s []float32, ss int) {
	if int8Asm() {
		quantU8RowAVX512(&x[0], k, group, &q[0], &s[0], 4*ss)
		return
	}
	quantU8RowGo(x, k, group, q, s, ss)
}

// i8BlockBytes bounds an M block's u8 rows so that they stay in L2 while
// the column panels pass over them.
const i8BlockBytes = 384 << 10

// gemmInt8 computes C = epilogue(A W^T) on the int8 path; the operands
// are checked and int8GemmOK(m, w) holds.
func gemmInt8(m int, a []float32, lda int, w *QMatrix, c []float32, ldc int, ep Epilogue) {
	if ep.Accumulate && ep.Act != ActNone {
		// The activation must not see the old C (as GemmEpilogue).
		wk := getI8Work()
		tmp := growF32(&wk.tmp, m*w.N)
		inner := ep
		inner.Accumulate, inner.Residual = false, nil
		gemmInt8(m, a, lda, w, tmp, w.N, inner)
		addInto(m, w.N, c, ldc, tmp, ep.Residual)
		putI8Work(wk)
		return
	}
	p := int8PackOf(w)
	wk := getI8Work()
	defer putI8Work(wk)
	k, ng := p.k, p.ng
	j := &wk.job
	*j = i8Job{p: p, m: m, a: a, lda: lda, c: c, ldc: ldc, quantize: true,
		aq: growBytes(&wk.aq, m*k), as: growF32(&wk.as, m*ng)}
	parallelRun(m, max(1, 8192/k), 1, j)
	j.quantize = false
	if ep.Accumulate {
		j.accum = 1
	}
	if ep.active() {
		wk.ep = ep
		j.ep = &wk.ep
	}
	j.mb = max(i8MR, i8BlockBytes/k/i8MR*i8MR)
	j.nmb = (m + j.mb - 1) / j.mb
	parallelRun(j.nmb*p.np, 1, 4, j)
	*j = i8Job{}
	wk.ep = Epilogue{}
}

// growBytes is growF32 for bytes.
func growBytes(s *[]byte, n int) []byte {
	if cap(*s) < n {
		*s = alignedBytes(n)
	}
	return (*s)[:n]
}

// i8Work holds one int8 GEMM call's buffers, kept between calls in a
// FreeList like gemmWork.
type i8Work struct {
	job i8Job
	ep  Epilogue
	aq  []byte
	as  []float32
	tmp []float32
}

var i8Free FreeList[i8Work]

func getI8Work() *i8Work { return i8Free.Get() }

func putI8Work(w *i8Work) { i8Free.Put(w) }
