package kernels

import "time"

// PeakGFLOPS measures the float32 FMA peak of this machine on Threads()
// threads right now: the best of runs short loops of independent vector
// FMA chains (the loop BenchmarkPeak times), in GFLOP/s by the wall clock,
// or 0 when this CPU has no FMA assembly path. Clocks drift by tens of
// percent between runs on shared machines, so benchmarks outside this
// package report their rates as a fraction of a peak measured in the same
// process rather than against a constant.
func PeakGFLOPS(runs int) float64 {
	f, per := peakLoop(bestPath)
	if f == nil {
		return 0
	}
	const iters = 2_000_000
	t := Threads()
	best := 0.0
	for range max(runs, 1) {
		start := time.Now()
		ParallelFor(t, 1, func(lo, hi int) {
			for range hi - lo {
				f(iters)
			}
		})
		best = max(best, float64(t)*iters*per/time.Since(start).Seconds()/1e9)
	}
	return best
}
