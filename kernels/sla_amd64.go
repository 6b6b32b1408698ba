package kernels

//go:noescape
func slaPrepAVX512(qr, kr, ksum, q, k, pos *float32, n, d, ldQKV, ldC int)

//go:noescape
func slaNormAVX512(o, z, num, qr, ksum, bias *float32, n, d, ldC, ldQ int)

// slaPrepFast runs SLAPrep's loop on AVX-512 when that path is in use (the
// caller has zeroed ksum and checked bounds) and reports whether it did.
func slaPrepFast(qr, kr, ksum, q, k, pos []float32, n, d, ldQKV, ldC int) bool {
	if curPath != PathAVX512 {
		return false
	}
	slaPrepAVX512(&qr[0], &kr[0], &ksum[0], &q[0], &k[0], &pos[0], n, d, ldQKV, ldC)
	return true
}

func slaNormFast(o, z, num, qr, ksum, bias []float32, n, d, ldC, ldQ int) bool {
	if curPath != PathAVX512 || bias == nil {
		return false
	}
	slaNormAVX512(&o[0], &z[0], &num[0], &qr[0], &ksum[0], &bias[0], n, d, ldC, ldQ)
	return true
}

//go:noescape
func headMM4AVX512(c *float32, ldc int, a *float32, sI, sP int, b *float32, ldb, k int, masks uint64, accum int)

//go:noescape
func headMM1AVX512(c *float32, a *float32, sP int, b *float32, ldb, k int, masks uint64, accum int)

func headMatMulFast(m, n, k int, a []float32, sI, sP int, b []float32, ldb int, c []float32, ldc int, accum bool) bool {
	if curPath != PathAVX512 {
		return false
	}
	acc := 0
	if accum {
		acc = 1
	}
	i0 := 0
	if n <= 32 {
		// Head width <= 32: eight rows of two vectors per call.
		masks := uint32(1)<<uint(n) - 1
		if n == 32 {
			masks = ^uint32(0)
		}
		for ; i0+8 <= m; i0 += 8 {
			headMM8AVX512(&c[i0*ldc], ldc, &a[i0*sI], sI, sP, &b[0], ldb, k, masks, acc)
		}
		if i0 == m {
			return true
		}
		c, a, m = c[i0*ldc:], a[i0*sI:], m-i0
	}
	for j := 0; j < n; j += 64 {
		nn := min(64, n-j)
		masks := ^uint64(0)
		if nn < 64 {
			masks = 1<<uint(nn) - 1
		}
		i := 0
		for ; i+4 <= m; i += 4 {
			headMM4AVX512(&c[i*ldc+j], ldc, &a[i*sI], sI, sP, &b[j], ldb, k, masks, acc)
		}
		for ; i < m; i++ {
			headMM1AVX512(&c[i*ldc+j], &a[i*sI], sP, &b[j], ldb, k, masks, acc)
		}
	}
	return true
}

//go:noescape
func slaGradAVX512(gg, dden, dout, num, z *float32, n, d, ldC int)

//go:noescape
func slaInGradAVX512(dq, dk, qr, kr, dden, ksum, dks *float32, n, d, ldQKV, ldC int)

func slaGradFast(g, dden, dout, num, z []float32, n, d, ldC int) bool {
	if curPath != PathAVX512 {
		return false
	}
	slaGradAVX512(&g[0], &dden[0], &dout[0], &num[0], &z[0], n, d, ldC)
	return true
}

func slaInGradFast(dq, dk, qr, kr, dden, ksum, dks []float32, n, d, ldQKV, ldC int) bool {
	if curPath != PathAVX512 {
		return false
	}
	slaInGradAVX512(&dq[0], &dk[0], &qr[0], &kr[0], &dden[0], &ksum[0], &dks[0], n, d, ldQKV, ldC)
	return true
}

//go:noescape
func slaReluAVX512(c *float32, ldc int, pos *float32, ldp, rows, cols int)

func slaReluFast(c []float32, ldc int, pos []float32, ldp, rows, cols int) bool {
	if curPath != PathAVX512 {
		return false
	}
	var pp *float32
	if pos != nil {
		pp = &pos[0]
	}
	slaReluAVX512(&c[0], ldc, pp, ldp, rows, cols)
	return true
}
