package kernels

// Fused passes of SLAB's simplified linear attention (docs/method.md 3.1) for one
// attention head of one image. The d x d products per head (S = ReLU(K)ᵀV
// and ReLU(Q)·S, and their four backward counterparts) use HeadMatMul;
// everything else is folded into these passes so that each activation is
// swept once:
//
//	prep:    Qr = ReLU(Q), Kr = ReLU(K+P), ksum = Σ_j Kr_j      (one sweep)
//	output:  z_i = 1/(Qr_i·ksum + eps), O_i = z_i·num_i + b (+ DWC(V) by the caller)
//	grad:    G_i = z_i·dO_i, dden_i = -z_i·(G_i·num_i)
//	input:   dQ = (dQr + dden·ksumᵀ) ⊙ [Qr>0], dK = (dKr + 1·dksumᵀ) ⊙ [Kr>0]
//
// No N x N matrix ever exists. Slices point at the head's first channel;
// ld values are row strides (3C for the qkv activation, C for per-token
// buffers).

// SLAEps is the normaliser's epsilon (official code: 1e-6).
const SLAEps = 1e-6

// SLAPrep computes Qr = ReLU(q), Kr = ReLU(k+pos) and ksum = Σ_j Kr_j for
// n tokens of d channels. q and k have row stride ldQKV, pos, qr and kr
// row stride ldC. ksum[:d] is overwritten.
func SLAPrep(qr, kr, ksum, q, k, pos []float32, n, d, ldQKV, ldC int) {
	ks := ksum[:d]
	clear(ks)
	if n <= 0 || d <= 0 {
		return
	}
	// Bounds of the last row, checked once for the vector kernel.
	_, _ = q[(n-1)*ldQKV+d-1], k[(n-1)*ldQKV+d-1]
	_, _, _ = pos[(n-1)*ldC+d-1], qr[(n-1)*ldC+d-1], kr[(n-1)*ldC+d-1]
	if slaPrepFast(qr, kr, ks, q, k, pos, n, d, ldQKV, ldC) {
		return
	}
	for i := 0; i < n; i++ {
		qi := q[i*ldQKV : i*ldQKV+d]
		ki := k[i*ldQKV : i*ldQKV+d]
		pi := pos[i*ldC : i*ldC+d]
		qo := qr[i*ldC : i*ldC+d]
		ko := kr[i*ldC : i*ldC+d]
		for c, v := range qi {
			qo[c] = max(v, 0)
		}
		for c, v := range ki {
			r := max(v+pi[c], 0)
			ko[c] = r
			ks[c] += r
		}
	}
}

// SLAReLU sets c = ReLU(c + pos) in place on a rows x cols block (row
// strides ldc and ldp; pos nil: c = ReLU(c)): SLAPrep's ReLUs without its
// copies or ksum, for a GEMM epilogue that applies them to the qkv output
// while each tile is still in cache (nn.SLA in evaluation).
func SLAReLU(c []float32, ldc int, pos []float32, ldp, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	_ = c[(rows-1)*ldc+cols-1]
	if pos != nil {
		_ = pos[(rows-1)*ldp+cols-1]
	}
	if slaReluFast(c, ldc, pos, ldp, rows, cols) {
		return
	}
	for i := 0; i < rows; i++ {
		ci := c[i*ldc : i*ldc+cols]
		if pos == nil {
			for j, v := range ci {
				ci[j] = max(v, 0)
			}
			continue
		}
		pi := pos[i*ldp : i*ldp+cols]
		for j, v := range ci {
			ci[j] = max(v+pi[j], 0)
		}
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// SLANormalize computes, for n tokens, z_i = 1/(Qr_i·ksum + SLAEps) into
// z[i] and O_i = z_i·num_i + bias into o (row stride ldC for o, num and
// qr). bias (d values, nil = none) is the depthwise conv's bias, added here
// so that the conv itself can accumulate without one.
func SLANormalize(o, z, num, qr, ksum, bias []float32, n, d, ldC int) {
	SLANormalizeQ(o, z, num, qr, ksum, bias, n, d, ldC, ldC)
}

// SLANormalizeQ is SLANormalize with Qr at row stride ldQ (3C when the
// ReLU was applied in place in the qkv activation).
func SLANormalizeQ(o, z, num, qr, ksum, bias []float32, n, d, ldC, ldQ int) {
	ks := ksum[:d]
	if n <= 0 || d <= 0 {
		return
	}
	_, _, _, _ = o[(n-1)*ldC+d-1], num[(n-1)*ldC+d-1], qr[(n-1)*ldQ+d-1], z[n-1]
	if bias != nil {
		bias = bias[:d]
	}
	if slaNormFast(o, z, num, qr, ks, bias, n, d, ldC, ldQ) {
		return
	}
	for i := 0; i < n; i++ {
		zi := 1 / (dot(qr[i*ldQ:i*ldQ+d], ks) + SLAEps)
		z[i] = zi
		oi := o[i*ldC : i*ldC+d]
		ni := num[i*ldC : i*ldC+d]
		for c, v := range ni {
			oi[c] = zi * v
		}
		if bias != nil {
			for c, v := range bias {
				oi[c] += v
			}
		}
	}
}

// SLAGrad computes G_i = z_i·dO_i into g and dden_i = -z_i·(G_i·num_i),
// the gradient of the normaliser's denominator, for n tokens.
func SLAGrad(g, dden, dout, num, z []float32, n, d, ldC int) {
	if n <= 0 || d <= 0 {
		return
	}
	_, _, _ = g[(n-1)*ldC+d-1], dout[(n-1)*ldC+d-1], num[(n-1)*ldC+d-1]
	_, _ = dden[n-1], z[n-1]
	if slaGradFast(g, dden, dout, num, z, n, d, ldC) {
		return
	}
	for i := 0; i < n; i++ {
		zi := z[i]
		gi := g[i*ldC : i*ldC+d]
		di := dout[i*ldC : i*ldC+d]
		for c, v := range di {
			gi[c] = zi * v
		}
		dden[i] = -zi * dot(gi, num[i*ldC:i*ldC+d])
	}
}

// SLAInputGrad finishes dQ and dK in place for n tokens: dq holds
// dQr = G·Sᵀ and becomes (dQr + dden_i·ksum) ⊙ [Qr>0]; dk holds
// dKr = V·dSᵀ and becomes (dKr + dksum) ⊙ [Kr>0]. dq, dk have row stride
// ldQKV, qr, kr ldC.
func SLAInputGrad(dq, dk, qr, kr, dden, ksum, dks []float32, n, d, ldQKV, ldC int) {
	ks := ksum[:d]
	dkv := dks[:d]
	if n <= 0 || d <= 0 {
		return
	}
	_, _ = dq[(n-1)*ldQKV+d-1], dk[(n-1)*ldQKV+d-1]
	_, _, _ = qr[(n-1)*ldC+d-1], kr[(n-1)*ldC+d-1], dden[n-1]
	if slaInGradFast(dq, dk, qr, kr, dden, ks, dkv, n, d, ldQKV, ldC) {
		return
	}
	for i := 0; i < n; i++ {
		dqi := dq[i*ldQKV : i*ldQKV+d]
		dki := dk[i*ldQKV : i*ldQKV+d]
		qi := qr[i*ldC : i*ldC+d]
		ki := kr[i*ldC : i*ldC+d]
		a := dden[i]
		for c := range dqi {
			if qi[c] > 0 {
				dqi[c] += a * ks[c]
			} else {
				dqi[c] = 0
			}
		}
		for c := range dki {
			if ki[c] > 0 {
				dki[c] += dkv[c]
			} else {
				dki[c] = 0
			}
		}
	}
}

// HeadMatMul computes C (+)= op(A)·B for the per-head products of SLA,
// where op(A)[i][p] = a[i*sI + p*sP] (so sI = lda, sP = 1 is A itself and
// sI = 1, sP = lda its transpose), B is k x n with row stride ldb and C is
// m x n with row stride ldc. With accum C is added to, else overwritten.
//
// Why not Gemm: these products have one or two dimensions equal to the head
// width d <= 64 (KᵀV is d x d over N tokens, Q·S is N x d over d), where a
// packing GEMM spends much of its time packing. Here A is read in place
// (broadcast element by element from either layout) and B rows are read in
// place, so there is no packing at all; the AVX-512 kernel keeps a 4 x 64
// block of C in 16 registers. Serial: callers parallelise over heads or
// row blocks.
func HeadMatMul(m, n, k int, a []float32, sI, sP int, b []float32, ldb int, c []float32, ldc int, accum bool) {
	if m <= 0 || n <= 0 {
		return
	}
	// Bounds of the last element each operand touches, checked once.
	_ = c[(m-1)*ldc+n-1]
	if k > 0 {
		_ = a[(m-1)*sI+(k-1)*sP]
		_ = b[(k-1)*ldb+n-1]
	}
	if headMatMulFast(m, n, k, a, sI, sP, b, ldb, c, ldc, accum) {
		return
	}
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if !accum {
			clear(ci)
		}
		for p := 0; p < k; p++ {
			axpy(ci, a[i*sI+p*sP], b[p*ldb:p*ldb+n])
		}
	}
}
