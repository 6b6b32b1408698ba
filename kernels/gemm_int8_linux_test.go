package kernels

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
	"time"
)

// BenchmarkGEMMInt8CPU holds the int8 GEMM against the VPDPBUSD peak
// loop and the float32 GEMM against the FMA peak loop on one thread, in
// operations per CPU-nanosecond of the calling thread (locked to it; with
// one thread every kernel runs inline), each round
// running all four in turn: on a loaded machine a preempted stretch
// costs no CPU time, so the fractions hold where wall-clock ones do not.
// i8/f32time is the int8 GEMM's CPU time over the float32 GEMM's.
//
//	go test -run '^$' -bench GEMMInt8CPU -count 3 ./kernels/
func BenchmarkGEMMInt8CPU(b *testing.B) {
	vnni, vper := lowPrecPeak(Int8)
	fma, fper := peakLoop(bestPath)
	if vnni == nil || bestPath != PathAVX512 {
		b.Skip("no AVX512_VNNI")
	}
	defer SetThreads(Threads())
	SetThreads(1)
	for _, s := range deitShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewSource(1))
		a, w := gemmRand(rng, m*k), gemmRand(rng, n*k)
		c := make([]float32, m*n)
		q, _ := Quantize(Int8, w, n, k)
		GemmQ(m, a, k, q, c, n, Epilogue{}) // pack W
		reps := max(1, (4<<20)/(m*n*k/64))
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var tv, ti, tf, tp time.Duration
			for b.Loop() {
				c0 := threadCPU()
				vnni(200_000)
				c1 := threadCPU()
				for range reps {
					GemmQ(m, a, k, q, c, n, Epilogue{})
				}
				c2 := threadCPU()
				for range max(1, reps/4) {
					GemmEpilogue(false, true, m, n, k, a, k, w, k, c, n, Epilogue{})
				}
				c3 := threadCPU()
				fma(200_000)
				c4 := threadCPU()
				tv, ti, tf, tp = tv+c1-c0, ti+c2-c1, tf+c3-c2, tp+c4-c3
			}
			ops := 2 * float64(m*n*k)
			rv := vper * 200_000 / float64(tv.Nanoseconds())
			ri := ops * float64(reps) / float64(ti.Nanoseconds())
			rf := ops * float64(max(1, reps/4)) / float64(tf.Nanoseconds())
			rp := fper * 200_000 / float64(tp.Nanoseconds())
			b.ReportMetric(ri, "i8GOP/cpu-s")
			b.ReportMetric(rv, "peakGOP/cpu-s")
			b.ReportMetric(100*ri/rv, "%vnnipeak")
			b.ReportMetric(100*rf/rp, "f32%fmapeak")
			b.ReportMetric(rf/ri, "i8/f32time")
		})
	}
}
