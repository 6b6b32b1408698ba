package kernels

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// GEMM design (BLIS). C is computed in blocks: for each NC-wide column block
// of op(B) and each KC-deep slice of k, the KC x NC block of op(B) is packed
// into NR-wide panels (each k step holds NR consecutive floats) and, for each
// MC-tall row block, the MC x KC block of op(A) into MR-tall panels. A
// register-blocked microkernel then multiplies one A panel by one B panel
// into an MR x NR tile of C that lives in registers for the whole k slice
// (AVX-512: 12x32, 24 ZMM accumulators; AVX2: 6x16; pure Go: 4x4).
// The B panel (KC*NR*4 = 32 KiB for the AVX-512 kernel) stays in L1 while
// the kernel walks the A panels of an L2-sized block (MC*KC*4 = 240 KiB);
// the packed B block (KC*NC*4 = 3 MiB) stays in L3. (Products of more
// than two L2 blocks of rows take deeper k slices, up to 1024, whose B
// panels live in L2: see sliceK.)
//
// Packing is skipped where the kernel can read the operand in place,
// because for the small shapes that matter (197-row ViT batches, 64-wide
// heads) a packing pass costs as much as a fifth of the GEMM:
//   - A row-major (x W^T, dy W): sgemmKernelAVX512DA broadcasts from 12
//     row pointers; A transposed (dy^T x): the strided kernel walks it with
//     astride = lda. Only alpha != 1 and partial panels are packed.
//   - B row-major, M small (weight gradients): the kernel reads B's rows
//     with bstride = ldb. A transposed B (the Linear layout W [N,K]) is
//     always packed, 16x16 blocks at a time through a register transpose.
//
// Edge tiles: on AVX-512 a panel of fewer than MR rows runs the kernel of
// exactly its height (gen emits heights 1-12, widths 16 and 32), straight
// into C; columns short of a multiple of 16 are computed into a scratch
// tile on the stack and copied, from B panels packed zero-padded. The
// other paths compute every edge tile into scratch. No kernel needs masks.
//
// Two drivers share the kernels. For M up to two L2 blocks (batch-1
// Linears, attention heads, weight gradients) and whenever B is prepacked
// (PackedB), the fused driver of gemm_fused.go runs the whole product as
// one parallel region whose threads claim (B panel x A block) items and
// pack their own B panels: no barrier per k slice, no packed panel
// crossing between cores, dynamic balance. Taller products use the
// blocked driver below, which packs each B block once, shared.
//
// Blocked driver parallelism (the persistent pool of pool.go): packing is
// split over panels; the tile loop over B panels (threads share A, each
// keeps its own B panel hot in L1) or, when that balances worse, over A
// panels; for M in the thousands, over L2 blocks of A claimed one at a
// time, in a single region without a barrier per block. M = 1 with a
// transposed B (decode, y = x W^T) is a GEMV bound by reading W once: no
// packing, rows of W split over threads. Epilogues (bias, exact GELU,
// residual) run on each tile right after its last k slice, while it is in
// L1.

// ukernel describes the microkernel family in use and its blocking.
type ukernel struct {
	mr, nr     int
	kc, mc, nc int
	// kind selects the microkernel that computes the mr x nr tile
	// c (=|+=) A*B (see callKernel); a switch rather than a func
	// value so that the stack scratch tile passed to assembly stays on the
	// stack.
	kind kernelKind
	// hasDot4 means callDot4 and callDot8 can run the GEMV rows.
	hasDot4 bool
	// directA means callKernelDA can read full row-major A panels in
	// place (no packing); transpose16 means packBT can use the register
	// transpose for transposed B.
	directA, transpose16 bool
}

var uk ukernel

// kernelKind names a microkernel.
type kernelKind int

const (
	kernelGo kernelKind = iota
	kernelAVX512
	kernelAVX2
)

var genericKernel = ukernel{mr: 4, nr: 4, kc: 256, mc: 128, nc: 2048}

// Activation selects the elementwise function a GemmEpilogue applies.
type Activation int

// Activations supported by GemmEpilogue.
const (
	ActNone Activation = iota
	// ActGELU is the exact GELU, x*Phi(x) = 0.5*x*(1+erf(x/sqrt 2)), as
	// PyTorch's nn.GELU() default (not the tanh approximation).
	ActGELU
)

// Epilogue is the work GemmEpilogue fuses into the GEMM's final pass over
// each tile of C while the tile is still in cache, so a Linear layer with
// bias, activation and residual costs one pass over memory:
//
//	out = act(op(A)*op(B) + Bias) + Residual
//	C   = out          (Accumulate false)
//	C  += out          (Accumulate true; the sum C + op(A)*op(B) is formed
//	                    first when Act is ActNone)
//
// With Accumulate and an activation, the activation applies to the product
// plus bias only, never to the old C (the gradient-accumulation case).
type Epilogue struct {
	// Bias has n entries, added to every row; nil for none.
	Bias []float32
	// Act is applied after the bias.
	Act Activation
	// Residual is an m x n matrix with row stride ldc, added after the
	// activation; nil for none. It must not overlap C, except that passing
	// C itself is allowed and means the same as Accumulate.
	Residual []float32
	// Accumulate adds the result to C instead of overwriting it.
	Accumulate bool
}

// Gemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices, where
// op(A) is m x k, op(B) is k x n and C is m x n. transA means A is stored as
// k x m (lda >= m), transB means B is stored as n x k (ldb >= k).
// beta == 0 overwrites C without reading it (NaNs in C do not propagate).
// Bad shapes or short slices panic with a message naming the operands.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

// GemmEpilogue computes C = epilogue(op(A)*op(B)) (see Epilogue) with the
// same layout rules as Gemm. Use it for Linear layers: y = x W^T + bias is
// GemmEpilogue(false, true, rows, out, in, x, in, W, in, y, out,
// Epilogue{Bias: bias}).
func GemmEpilogue(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	checkEpilogue(m, n, c, ldc, &ep)
	if ep.Accumulate && ep.Act != ActNone {
		// The activation must not see the old C: form the product in a
		// scratch matrix, then add.
		w := getWork()
		tmp := growF32(&w.tmp, m*n)
		inner := ep
		inner.Accumulate = false
		inner.Residual = nil
		gemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, tmp, n, &inner)
		addInto(m, n, c, ldc, tmp, ep.Residual)
		putWork(w)
		return
	}
	beta := float32(0)
	if ep.Accumulate {
		beta = 1
	}
	var epp *Epilogue
	if ep.Bias != nil || ep.Act != ActNone || ep.Residual != nil {
		epp = &ep
	}
	gemm(transA, transB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc, epp)
}

// checkEpilogue validates ep against an m x n C and turns a residual that
// is C itself into Accumulate.
func checkEpilogue(m, n int, c []float32, ldc int, ep *Epilogue) {
	if ep.Bias != nil && len(ep.Bias) < n {
		panic(fmt.Sprintf("kernels.GemmEpilogue: bias has %d elements, C is %dx%d", len(ep.Bias), m, n))
	}
	if ep.Act != ActNone && ep.Act != ActGELU {
		panic(fmt.Sprintf("kernels.GemmEpilogue: unknown activation %d", ep.Act))
	}
	if ep.Residual != nil {
		if m > 0 && n > 0 && len(ep.Residual) < (m-1)*ldc+n {
			panic(fmt.Sprintf("kernels.GemmEpilogue: residual has %d elements, C is %dx%d (ld %d)", len(ep.Residual), m, n, ldc))
		}
		if len(c) > 0 && len(ep.Residual) > 0 && &ep.Residual[0] == &c[0] {
			ep.Residual = nil
			ep.Accumulate = true
		}
	}
}

// addInto sets C += T (+ R), T dense m x n, R with C's row stride.
func addInto(m, n int, c []float32, ldc int, t, r []float32) {
	ParallelFor(m, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ci := c[i*ldc : i*ldc+n]
			ti := t[i*n : i*n+n]
			if r != nil {
				ri := r[i*ldc : i*ldc+n]
				for j := range ci {
					ci[j] += ti[j] + ri[j]
				}
			} else {
				for j := range ci {
					ci[j] += ti[j]
				}
			}
		}
	})
}

// GemmStrided runs batch independent GEMMs; matrix i of A, B and C starts at
// i*strideA, i*strideB and i*strideC. Small matrices (attention heads) are
// spread over threads one whole GEMM each; large ones are parallel inside.
func GemmStrided(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	if batch < 0 {
		panic(fmt.Sprintf("kernels.GemmStrided: negative batch %d", batch))
	}
	if batch == 0 {
		return
	}
	if strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Sprintf("kernels.GemmStrided: negative stride A=%d B=%d C=%d", strideA, strideB, strideC))
	}
	for i := range batch {
		// Validate every matrix up front so a bad batch fails before any
		// output is written.
		checkGemm(transA, transB, m, n, k, tail(a, i*strideA), lda, tail(b, i*strideB), ldb, tail(c, i*strideC), ldc)
	}
	if m > 0 && n > 0 && k > 0 && alpha != 0 && fusedOK(&uk, m, false) && !noFused {
		// One region for the whole batch (e.g. the 3 heads of a ViT-Tiny
		// image, 197x64x197 each: ~10 us of work per matrix).
		if beta != 0 && beta != 1 {
			for i := range batch {
				scaleC(m, n, beta, c[i*strideC:], ldc)
			}
			beta = 1
		}
		w := getWork()
		gemmFused(w, transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch, nil, nil)
		putWork(w)
		return
	}
	// Threads inside one GEMM pay a barrier per block; across the batch they
	// pay nothing. Use the batch when it can keep every thread busy.
	if batch >= 2*threads || (batch >= threads && batch%threads == 0) {
		ParallelFor(batch, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gemm(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc, nil)
			}
		})
		return
	}
	for i := range batch {
		gemm(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc, nil)
	}
}

// tail returns s[off:], or nil when off is past the end (checkGemm then
// reports the short slice instead of an index panic).
func tail(s []float32, off int) []float32 {
	if off > len(s) {
		return nil
	}
	return s[off:]
}

func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels.Gemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	// Formatted only on failure: checkGemm runs on every call.
	shapes := func() string {
		return fmt.Sprintf("(op(A) %dx%d, op(B) %dx%d, C %dx%d, transA=%v transB=%v)", m, k, k, n, m, n, transA, transB)
	}
	need := func(name string, s []float32, rows, cols, ld int) {
		if rows == 0 || cols == 0 {
			return
		}
		if ld < cols {
			panic(fmt.Sprintf("kernels.Gemm: %s is stored %dx%d but ld=%d < %d %s", name, rows, cols, ld, cols, shapes()))
		}
		if len(s) < (rows-1)*ld+cols {
			panic(fmt.Sprintf("kernels.Gemm: %s is stored %dx%d (ld %d, needs %d elements) but has only %d %s", name, rows, cols, ld, (rows-1)*ld+cols, len(s), shapes()))
		}
	}
	need("A", a, ar, ac, lda)
	need("B", b, br, bc, ldb)
	need("C", c, m, n, ldc)
}

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
}

// packTask packs the A panels [0, npa) of the current row block (only the
// partial last panel when A is read in place), then, as task numbers npa
// and up, groups of B panels of the current k slice.
type packTask struct {
	kr             *ukernel
	transA, transB bool
	direct         bool // full A panels are read in place, not packed
	bInPlace       bool // full B panels are read in place, not packed
	a, b           []float32
	lda, ldb       int
	alpha          float32
	apack, bpack   []float32
	ic, mc, npa    int
	pc, kc, jc, nc int
	npb, bgroups   int // B panels and the groups they are packed in
	packB          bool
}

// tasks is the size of the parallel range for the current block.
func (t *packTask) tasks() int {
	n := t.npa
	if t.packB {
		if !t.bInPlace {
			n += t.bgroups
		} else if t.nc%t.kr.nr != 0 {
			n++ // the partial last panel
		}
	}
	return n
}

func (t *packTask) run(lo, hi int) {
	mr, nr := t.kr.mr, t.kr.nr
	for i := lo; i < hi; i++ {
		if i < t.npa {
			rows := min(mr, t.mc-i*mr)
			if t.direct && rows == mr {
				continue
			}
			dst := t.apack // with direct A, the only packed panel
			if !t.direct {
				dst = t.apack[i*mr*t.kc:]
			}
			packA(mr, t.transA, t.a, t.lda, t.ic+i*mr, rows, t.pc, t.kc, t.alpha, dst)
			continue
		}
		g := i - t.npa
		jp0, jp1 := g*t.npb/t.bgroups, (g+1)*t.npb/t.bgroups
		if t.bInPlace {
			jp0, jp1 = t.npb-1, t.npb
		}
		if t.transB {
			for jp := jp0; jp < jp1; jp++ {
				packBT(t.kr, t.b, t.ldb, t.pc, t.kc, t.jc+jp*nr, min(nr, t.nc-jp*nr), t.bpack[jp*nr*t.kc:])
			}
		} else {
			packBN(nr, t.b, t.ldb, t.pc, t.kc, t.jc, t.nc, jp0, jp1, t.bpack)
		}
	}
}

// packPanels packs B panels [jp0, jp1) of the current k slice (with B read
// in place, only the partial last panel).
func (t *packTask) packPanels(jp0, jp1 int) {
	nr := t.kr.nr
	if t.bInPlace {
		if t.nc%nr == 0 || jp1 < t.npb {
			return
		}
		jp0 = t.npb - 1
	}
	if t.transB {
		for jp := jp0; jp < jp1; jp++ {
			packBT(t.kr, t.b, t.ldb, t.pc, t.kc, t.jc+jp*nr, min(nr, t.nc-jp*nr), t.bpack[jp*nr*t.kc:])
		}
	} else {
		packBN(nr, t.b, t.ldb, t.pc, t.kc, t.jc, t.nc, jp0, jp1, t.bpack)
	}
}

// workFree is a small free list rather than a sync.Pool: a sync.Pool is
// emptied by every garbage collection, and re-growing megabytes of packing
// buffers after each GC (page faults included) is exactly the re-allocation
// on the hot path this package avoids. At most one buffer set per possible
// concurrent caller is kept.
var workFree struct {
	mu   sync.Mutex
	list []*gemmWork
}

func getWork() *gemmWork {
	workFree.mu.Lock()
	if n := len(workFree.list); n > 0 {
		w := workFree.list[n-1]
		workFree.list = workFree.list[:n-1]
		workFree.mu.Unlock()
		return w
	}
	workFree.mu.Unlock()
	return new(gemmWork)
}

func putWork(w *gemmWork) {
	workFree.mu.Lock()
	if len(workFree.list) < 2*runtime.GOMAXPROCS(0)+2 {
		workFree.list = append(workFree.list, w)
	}
	workFree.mu.Unlock()
}

// growF32 returns (*s)[:n], reallocating only when capacity is short. The
// packed panels are read with 64-byte vector loads, so the backing array is
// aligned to 64 bytes.
func growF32(s *[]float32, n int) []float32 {
	if cap(*s) < n {
		raw := make([]float32, n+16)
		off := 0
		if r := uintptr(unsafe.Pointer(&raw[0])) & 63; r != 0 {
			off = int(64-r) / 4
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
	kr.kc = kr.sliceK(m, k)
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
		kernelAVX512Rows(direct, rows, nv, t.kc, ap, as, bptr, bs, &t.c[i0*t.ldc+j0], t.ldc, acc)
	} else {
		w := 16 * nv
		kernelAVX512Rows(direct, rows, nv, t.kc, ap, as, bptr, bs, &scratch[0], w, 0)
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

// packA packs rows [i0, i0+rows) and k range [p0, p0+kc) of alpha*op(A)
// into an mr-tall panel: dst[p*mr+i], zero rows past the edge.
func packA(mr int, transA bool, a []float32, lda, i0, rows, p0, kc int, alpha float32, dst []float32) {
	dst = dst[:mr*kc]
	if transA {
		// op(A)[i][p] = a[p*lda+i]: each k step is a contiguous run.
		for p := 0; p < kc; p++ {
			src := a[(p0+p)*lda+i0 : (p0+p)*lda+i0+rows]
			d := dst[p*mr : p*mr+mr]
			if alpha == 1 && rows == 12 && mr == 12 {
				*(*[12]float32)(d) = *(*[12]float32)(src)
			} else if alpha == 1 {
				copy(d, src)
			} else {
				for i, v := range src {
					d[i] = alpha * v
				}
			}
			clear(d[rows:])
		}
		return
	}
	for i := 0; i < rows; i++ {
		src := a[(i0+i)*lda+p0 : (i0+i)*lda+p0+kc]
		if alpha == 1 {
			for p, v := range src {
				dst[p*mr+i] = v
			}
		} else {
			for p, v := range src {
				dst[p*mr+i] = alpha * v
			}
		}
	}
	for i := rows; i < mr; i++ {
		for p := 0; p < kc; p++ {
			dst[p*mr+i] = 0
		}
	}
}

// packBN packs B panels [jp0, jp1) of the block (columns j0.. of width
// nc) of a non-transposed B: dst[jp*nr*kc + p*nr + j]. The k loop is outer
// so that each row of B is read as one contiguous run across the panels,
// instead of panel by panel with a page-sized stride.
func packBN(nr int, b []float32, ldb, p0, kc, j0, nc, jp0, jp1 int, dst []float32) {
	for p := 0; p < kc; p++ {
		row := b[(p0+p)*ldb+j0 : (p0+p)*ldb+j0+nc]
		for jp := jp0; jp < jp1; jp++ {
			d := dst[jp*nr*kc+p*nr : jp*nr*kc+p*nr+nr]
			cols := min(nr, nc-jp*nr)
			src := row[jp*nr : jp*nr+cols]
			// Fixed-size copies compile to inline vector moves; a
			// memmove call per 128 bytes cost as much as the copy.
			switch {
			case cols == 32 && nr == 32:
				*(*[32]float32)(d) = *(*[32]float32)(src)
			case cols == 16 && nr == 16:
				*(*[16]float32)(d) = *(*[16]float32)(src)
			default:
				copy(d, src)
				clear(d[cols:])
			}
		}
	}
}

// packBT packs columns [j0, j0+cols) and k range [p0, p0+kc) of a
// transposed B (B stored n x k, rows contiguous in k) into an nr-wide
// panel dst[p*nr+j], zero columns past the edge. Blocks of 16 columns x 16
// k steps go through the register transpose when the CPU has it.
func packBT(kr *ukernel, b []float32, ldb, p0, kc, j0, cols int, dst []float32) {
	nr := kr.nr
	dst = dst[:nr*kc]
	k16 := 0
	j16 := 0
	if kr.transpose16 {
		k16 = kc &^ 15
		j16 = cols &^ 15
		if k16 > 0 {
			for j := 0; j < j16; j += 16 {
				transpose16(k16, &b[(j0+j)*ldb+p0], ldb, &dst[j], nr)
			}
		}
	}
	for j := 0; j < cols; j++ {
		src := b[(j0+j)*ldb+p0 : (j0+j)*ldb+p0+kc]
		pStart := 0
		if j < j16 {
			pStart = k16
		}
		for p := pStart; p < kc; p++ {
			dst[p*nr+j] = src[p]
		}
	}
	for j := cols; j < nr; j++ {
		for p := 0; p < kc; p++ {
			dst[p*nr+j] = 0
		}
	}
}

// kernelGo4x4 is the pure-Go microkernel: a 4x4 tile in 16 scalar
// accumulators, which the Go compiler keeps in registers.
func kernelGo4x4(kc int, a, b, c []float32, ldc int, accum bool) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	a = a[:4*kc]
	b = b[:4*kc]
	for p := 0; p < kc; p++ {
		ap := a[p*4 : p*4+4 : p*4+4]
		bp := b[p*4 : p*4+4 : p*4+4]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	rows := [4][4]float32{{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}}
	for i := range rows {
		ci := c[i*ldc : i*ldc+4 : i*ldc+4]
		if accum {
			ci[0] += rows[i][0]
			ci[1] += rows[i][1]
			ci[2] += rows[i][2]
			ci[3] += rows[i][3]
		} else {
			ci[0], ci[1], ci[2], ci[3] = rows[i][0], rows[i][1], rows[i][2], rows[i][3]
		}
	}
}

// scaleC sets C = beta*C (beta 0 clears without reading).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	ParallelFor(m, max(1, 16384/max(n, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ci := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(ci)
			} else {
				for j := range ci {
					ci[j] *= beta
				}
			}
		}
	})
}

// applyEpilogue applies bias, activation and residual to C[i0:i1, j0:j1]
// (which already holds the product, plus the old C when accumulating).
func applyEpilogue(ep *Epilogue, c []float32, ldc, i0, i1, j0, j1 int) {
	if i1 <= i0 || j1 <= j0 {
		return
	}
	var bias, res []float32
	if ep.Bias != nil {
		bias = ep.Bias[j0:j1]
	}
	if ep.Residual != nil {
		res = ep.Residual[i0*ldc+j0:]
	}
	ct := c[i0*ldc+j0:]
	if ep.Act == ActNone {
		// Bias and residual in one vector pass over the tile.
		epilogueAdd(ct, ldc, i1-i0, j1-j0, bias, res, ldc)
		return
	}
	if ep.Act == ActGELU && curPath == PathAVX512 && geluBiasFast(ct, i1-i0, j1-j0, ldc, bias) {
		// Bias and GELU of the whole tile in one vector call.
		epilogueAdd(ct, ldc, i1-i0, j1-j0, nil, res, ldc)
		return
	}
	for i := i0; i < i1; i++ {
		ci := c[i*ldc+j0 : i*ldc+j1]
		if bias != nil {
			for j := range ci {
				ci[j] += bias[j]
			}
		}
		geluInPlace(ci)
		if ep.Residual != nil {
			r := ep.Residual[i*ldc+j0 : i*ldc+j1]
			for j := range ci {
				ci[j] += r[j]
			}
		}
	}
}

func dotGo(x, w []float32) float32 {
	w = w[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * w[i]
		s1 += x[i+1] * w[i+1]
		s2 += x[i+2] * w[i+2]
		s3 += x[i+3] * w[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * w[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// geluInPlace applies the exact-erf GELU: the AVX-512 kernel where it runs
// (16 lanes; the same Abramowitz-Stegun erfc as the scalar GELU in
// activation.go, within ~2e-7), else the package's GELU kernel. Scalar,
// the activation cost twice the fc1 GEMM it follows.
func geluInPlace(x []float32) {
	if curPath == PathAVX512 && geluBiasFast(x, 1, len(x), len(x), nil) {
		return
	}
	GELU(x, x)
}

// kcLong bounds the k slices of sliceK.
const kcLong = 1024

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
func (kr *ukernel) sliceK(m, k int) int {
	if kr.kind != kernelAVX512 || k <= kr.kc || m <= 2*kr.mc {
		return kr.kc
	}
	s := (k + kcLong - 1) / kcLong
	return (k + s - 1) / s
}

// noBInPlace disables reading B in place (for comparisons in tests).
var noBInPlace bool

// noFused disables the fused driver (for comparisons in tests).
var noFused bool
