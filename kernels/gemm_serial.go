package kernels

// GemmSerial computes C = A·B on the calling goroutine, for the small
// products that callers already run one per parallel task (attention's
// per-head Q·Kᵀ and P·V over a block of query rows): A is m x k row-major
// with row stride lda, B is k x n row-major with row stride ldb, C is
// m x n with row stride ldc, overwritten. Bad shapes or short slices panic
// with a message naming the operands.
//
// Both operands are read in place, as HeadMatMul reads them, but through
// the GEMM's 12x32 register tile (and its 1-11-row edge kernels) instead
// of HeadMatMul's 4x64 one: the wider tile does half the loads per FMA,
// and n is cut into 32-wide panels (16 for the last) instead of masked
// 64-wide ones, so Q·Kᵀ over 197 keys no longer computes 256 columns to
// keep 197. Only a last panel narrower than 16 or 32 columns is copied,
// zero-padded, into a k x 16 or k x 32 buffer.
//
// The sums are the same as HeadMatMul(m, n, k, a, lda, 1, b, ldb, c, ldc,
// false)'s, bit for bit: each element is one fused multiply-add chain over
// p = 0..k-1 from zero (the whole k in one kernel call, no k slices). On
// paths without the AVX-512 kernels it is that HeadMatMul call.
func GemmSerial(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkGemm(false, false, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if uk.kind != kernelAVX512 || k == 0 {
		HeadMatMul(m, n, k, a, lda, 1, b, ldb, c, ldc, false)
		return
	}
	mr := uk.mr
	var scratch [12 * 32]float32
	var w *gemmWork
	for j0 := 0; j0 < n; j0 += 32 {
		cols := min(32, n-j0)
		nv := 2
		if cols <= 16 {
			nv = 1
		}
		width := 16 * nv
		bptr, bs := &b[j0], ldb
		exact := cols == width
		if !exact {
			// Reading width columns in place would run past B's last row.
			if w == nil {
				w = getWork()
			}
			pb := growF32(&w.bpack, k*width)
			packBN(width, b, ldb, 0, k, j0, cols, 0, 1, pb)
			bptr, bs = &pb[0], width
		}
		for i0 := 0; i0 < m; i0 += mr {
			rows := min(mr, m-i0)
			if exact {
				kernelAVX512Rows(true, rows, nv, k, &a[i0*lda], lda, bptr, bs, &c[i0*ldc+j0], ldc, 0, nil, nil)
				continue
			}
			kernelAVX512Rows(true, rows, nv, k, &a[i0*lda], lda, bptr, bs, &scratch[0], width, 0, nil, nil)
			for i := 0; i < rows; i++ {
				copy(c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols], scratch[i*width:i*width+cols])
			}
		}
	}
	if w != nil {
		putWork(w)
	}
}
