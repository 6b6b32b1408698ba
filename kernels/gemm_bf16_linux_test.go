package kernels

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
	"time"
)

// BenchmarkGEMMBF16CPU holds the bf16 GEMM against the VDPBF16PS peak
// loop and the float32 GEMM (prepacked W, as a float32 Linear runs it)
// against the FMA peak loop on one thread, in flops per CPU-nanosecond of
// the calling thread (threadCPU; locked to it, and with one thread every
// kernel runs inline), each round running all of them in turn: on a
// loaded machine a preempted stretch costs no CPU time, so the fractions
// hold where wall-clock ones do not. bf16/f32time is the bf16 GEMM's CPU
// time over the float32 GEMM's, bf16/dequant over the dequantizing path's
// (SetBF16Gemm(false)).
//
//	go test -run '^$' -bench GEMMBF16CPU -count 3 ./kernels/
func BenchmarkGEMMBF16CPU(b *testing.B) {
	dot, dper := lowPrecPeak(BF16)
	fma, fper := peakLoop(bestPath)
	if dot == nil || bestPath != PathAVX512 {
		b.Skip("no AVX512_BF16")
	}
	defer SetThreads(Threads())
	SetThreads(1)
	for _, s := range deitShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewSource(1))
		a, w := gemmRand(rng, m*k), gemmRand(rng, n*k)
		c := make([]float32, m*n)
		q, _ := QuantizeBF16(w, n, k)
		var pb PackedB
		pb.Pack(true, k, n, w, k)
		GemmQ(m, a, k, q, c, n, Epilogue{}) // pack W
		reps := max(1, (4<<20)/(m*n*k/64))
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var tp, tb, tf, tq, tfp time.Duration
			for b.Loop() {
				c0 := threadCPU()
				dot(200_000)
				c1 := threadCPU()
				for range reps {
					GemmQ(m, a, k, q, c, n, Epilogue{})
				}
				c2 := threadCPU()
				for range reps {
					GemmPacked(m, a, k, &pb, c, n, Epilogue{})
				}
				c3 := threadCPU()
				prev := SetBF16Gemm(false)
				GemmQ(m, a, k, q, c, n, Epilogue{})
				SetBF16Gemm(prev)
				c4 := threadCPU()
				fma(200_000)
				c5 := threadCPU()
				tp, tb, tf, tq, tfp = tp+c1-c0, tb+c2-c1, tf+c3-c2, tq+c4-c3, tfp+c5-c4
			}
			flop := 2 * float64(m*n*k)
			rp := dper * 200_000 / float64(tp.Nanoseconds())
			rb := flop * float64(reps) / float64(tb.Nanoseconds())
			rf := flop * float64(reps) / float64(tf.Nanoseconds())
			rq := flop / float64(tq.Nanoseconds())
			rfp := fper * 200_000 / float64(tfp.Nanoseconds())
			b.ReportMetric(100*rb/rp, "%bf16peak")
			b.ReportMetric(100*rf/rfp, "f32%fmapeak")
			b.ReportMetric(rf/rb, "bf16/f32time")
			b.ReportMetric(rq/rb, "bf16/dequant")
			b.ReportMetric(0, "ns/op")
		})
	}
}
