package kernels

//go:noescape
func slaPrepAVX512(qr, kr, ksum, q, k, pos *float32, n, d, ldQKV, ldC int)

//go:noescape
func slaNormAVX512(o, z, num, qr, ksum *float32, n, d, ldC int)

// slaPrepFast runs SLAPrep's loop on AVX-512 when that path is in use (the
// caller has zeroed ksum and checked bounds) and reports whether it did.
func slaPrepFast(qr, kr, ksum, q, k, pos []float32, n, d, ldQKV, ldC int) bool {
	if curPath != PathAVX512 {
		return false
	}
	slaPrepAVX512(&qr[0], &kr[0], &ksum[0], &q[0], &k[0], &pos[0], n, d, ldQKV, ldC)
	return true
}

func slaNormFast(o, z, num, qr, ksum []float32, n, d, ldC int) bool {
	if curPath != PathAVX512 {
		return false
	}
	slaNormAVX512(&o[0], &z[0], &num[0], &qr[0], &ksum[0], n, d, ldC)
	return true
}
