package kernels

//go:noescape
func softmaxRowAVX512(y, x *float32, n int)

//go:noescape
func softmaxBwdRowAVX512(dx, y, dy *float32, n int, scale float32)

// softmaxRowFast runs one row on the AVX-512 kernel when that path is in
// use and reports whether it did.
func softmaxRowFast(y, x []float32) bool {
	if curPath != PathAVX512 || len(x) == 0 {
		return false
	}
	softmaxRowAVX512(&y[0], &x[0], len(x))
	return true
}

func softmaxBwdRowFast(dx, y, dy []float32, scale float32) bool {
	if curPath != PathAVX512 || len(y) == 0 {
		return false
	}
	softmaxBwdRowAVX512(&dx[0], &y[0], &dy[0], len(y), scale)
	return true
}
