package kernels

import "time"

// PeakGFLOPS measures the float32 FMA peak of this machine on Threads()
// threads right now: the best of runs short loops of independent vector
// FMA chains (the loop BenchmarkPeak times), in GFLOP/s by the wall clock
// (0 when this CPU has no FMA assembly path), and the flops all runs did
// together, for callers that also time them by CPU time (on a loaded
// machine the wall clock measures the scheduler). Clocks drift by tens of
// percent between runs on shared machines, so benchmarks outside this
// package report their rates as a fraction of a peak measured in the same
// process rather than against a constant.
func PeakGFLOPS(runs int) (best, flop float64) {
	f, per := peakLoop(bestPath)
	if f == nil {
		return 0, 0
	}
	const iters = 2_000_000
	t := Threads()
	runs = max(runs, 1)
	for range runs {
		start := time.Now()
		ParallelFor(t, 1, func(lo, hi int) {
			for range hi - lo {
				f(iters)
			}
		})
		best = max(best, float64(t)*iters*per/time.Since(start).Seconds()/1e9)
	}
	return best, float64(runs) * float64(t) * iters * per
}
