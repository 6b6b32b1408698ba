//go:build !amd64

package kernels

func slaPrepFast(qr, kr, ksum, q, k, pos []float32, n, d, ldQKV, ldC int) bool { return false }

func slaNormFast(o, z, num, qr, ksum, bias []float32, n, d, ldC, ldQ int) bool { return false }

func headMatMulFast(m, n, k int, a []float32, sI, sP int, b []float32, ldb int, c []float32, ldc int, accum bool) bool {
	return false
}

func slaGradFast(g, dden, dout, num, z []float32, n, d, ldC int) bool { return false }

func slaInGradFast(dq, dk, qr, kr, dden, ksum, dks []float32, n, d, ldQKV, ldC int) bool {
	return false
}

func slaReluFast(c []float32, ldc int, pos []float32, ldp, rows, cols int) bool { return false }
