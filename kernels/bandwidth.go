package kernels

// ReadAll reads every element of buf once and returns their sum: the
// threads take equal contiguous parts and read them with the widest
// vector loads the kernel path has. Timed over a buffer much larger than
// the caches, it is the memory system's read bandwidth, the rate a
// decoder's weight stream is held against (slab bench-lm). The sum's
// rounding depends on the thread count.
func ReadAll(buf []float32) float32 {
	t := max(1, min(Threads(), len(buf)/4096, maxProbeThreads))
	per := len(buf) / t &^ 63
	var part [maxProbeThreads]float32
	ParallelFor(t, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			part[i] = readPart(buf[i*per : (i+1)*per])
		}
	})
	s := readPart(buf[t*per:])
	for _, p := range part[:t] {
		s += p
	}
	return s
}

// maxProbeThreads bounds ReadAll's parts (one per thread).
const maxProbeThreads = 256

// readPart sums x: the AVX-512 read loop for whole 64-float blocks where
// it runs, Go for the rest.
func readPart(x []float32) float32 {
	var s float32
	if curPath == PathAVX512 && len(x) >= 64 {
		n := len(x) &^ 63
		s = readSum(n, &x[0])
		x = x[n:]
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return s + (s0 + s1) + (s2 + s3)
}
