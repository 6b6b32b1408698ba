//go:build !amd64

package kernels

func slaPrepFast(qr, kr, ksum, q, k, pos []float32, n, d, ldQKV, ldC int) bool { return false }

func slaNormFast(o, z, num, qr, ksum []float32, n, d, ldC int) bool { return false }
