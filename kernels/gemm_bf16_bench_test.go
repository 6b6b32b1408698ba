package kernels

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// BenchmarkGEMMBF16 times y = x W^T on the DeiT-Tiny/Small batch-1 Linear
// shapes (m x k x n) and one batch-32 shape three ways, interleaved within
// every iteration so that the ratios hold on a loaded machine: float32
// weights prepacked (GemmPacked, what a float32 Linear runs), bf16 weights
// on the VDPBF16PS GEMM, and bf16 weights dequantized in strips (the path
// before it). It reports the bf16 GEMM's GFLOP/s, its fraction of the
// VDPBF16PS peak measured in the same process, and its time over the
// float32 and the dequantizing GEMMs'. Each variant's time is its fastest
// round (on a loaded machine, the rounds not preempted), and the peak
// loops run as rounds of the same length between them.
//
//	go test -run '^$' -bench GEMMBF16 -count 3 ./kernels/
func BenchmarkGEMMBF16(b *testing.B) {
	if !hasBF16 || bestPath != PathAVX512 {
		b.Skip("no AVX512_BF16")
	}
	shapes := deitShapes
	for _, s := range shapes {
		m, k, n := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			rng := rand.New(rand.NewSource(1))
			a := gemmRand(rng, m*k)
			w := gemmRand(rng, n*k)
			c := make([]float32, m*n)
			var pb PackedB
			pb.Pack(true, k, n, w, k)
			q, err := QuantizeBF16(w, n, k)
			if err != nil {
				b.Fatal(err)
			}
			runs := []func(){
				func() { GemmPacked(m, a, k, &pb, c, n, Epilogue{}) },
				func() { GemmQ(m, a, k, q, c, n, Epilogue{}) },
				func() {
					prev := SetBF16Gemm(false)
					GemmQ(m, a, k, q, c, n, Epilogue{})
					SetBF16Gemm(prev)
				},
			}
			flop := 2 * float64(m*n*k)
			// The peaks run as rounds of their own between the GEMMs, of
			// about the same length, best round kept likewise.
			var peaks [2]float64
			peakRound := func(d Dtype) {
				_, per := lowPrecPeak(BF16)
				if d == F32 {
					_, per = peakLoop(bestPath)
				}
				iters := max(1000, int(flop/per)/Threads())
				peaks[d] = max(peaks[d], lowPrecPeakRun(d, Threads(), iters))
			}
			el := [3]time.Duration{1 << 62, 1 << 62, 1 << 62}
			for _, r := range runs {
				r()
			}
			b.ResetTimer()
			for b.Loop() {
				for i, r := range runs {
					t0 := time.Now()
					r()
					el[i] = min(el[i], time.Since(t0))
				}
				peakRound(F32)
				peakRound(BF16)
			}
			gf := flop / el[1].Seconds() / 1e9
			b.ReportMetric(gf, "bf16-GFLOP/s")
			b.ReportMetric(flop/el[0].Seconds()/1e9, "f32-GFLOP/s")
			b.ReportMetric(100*gf/peaks[BF16], "%bf16peak")
			b.ReportMetric(100*flop/el[0].Seconds()/1e9/peaks[F32], "f32%f32peak")
			b.ReportMetric(el[1].Seconds()/el[0].Seconds(), "bf16/f32")
			b.ReportMetric(el[1].Seconds()/el[2].Seconds(), "bf16/dequant")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkGEMMBF16Kernel times the 12x32 tile alone on one thread, data
// in L1 (kp pairs of A and B), interleaved with the VDPBF16PS peak loop:
// the microkernel's fraction of peak, without packing or threads.
func BenchmarkGEMMBF16Kernel(b *testing.B) {
	peak, _ := lowPrecPeak(BF16)
	if peak == nil || bestPath != PathAVX512 {
		b.Skip("no AVX512_BF16")
	}
	for _, kp := range []int{64, 192} {
		b.Run(fmt.Sprintf("kp%d", kp), func(b *testing.B) {
			a := make([]uint16, bf16MR*2*kp)
			w := make([]uint32, bf16NR*kp)
			for i := range a {
				a[i] = ToBF16(float32(i%7) / 8)
			}
			for i := range w {
				w[i] = uint32(ToBF16(float32(i%5)/4)) * 0x10001
			}
			var c [bf16MR * bf16NR]float32
			// Best of each per iteration: on a loaded machine the fastest
			// rounds are the ones not preempted.
			const reps = 200
			tk, tp := time.Duration(1<<62), time.Duration(1<<62)
			for b.Loop() {
				t0 := time.Now()
				for range reps {
					callGemmBF16(bf16MR, kp, &a[0], 2*kp, &w[0], &c[0], bf16NR, 0)
				}
				tk = min(tk, time.Since(t0))
				t0 = time.Now()
				peak(reps * kp) // 24 VDPBF16PS per iteration, as per k pair of the tile
				tp = min(tp, time.Since(t0))
			}
			b.ReportMetric(100*tp.Seconds()/tk.Seconds(), "%peak")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkGEMMBF16SmallM measures where the bf16 GEMM starts to pay off
// against the dequantizing path GemmQ ran before it, for few rows (a
// short prompt, a small batch): best rounds, interleaved.
func BenchmarkGEMMBF16SmallM(b *testing.B) {
	if !hasBF16 || bestPath != PathAVX512 {
		b.Skip("no AVX512_BF16")
	}
	for _, kn := range [][2]int{{192, 576}, {1024, 1024}, {1024, 2816}} {
		for _, m := range []int{2, 4, 8, 16} {
			k, n := kn[0], kn[1]
			b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
				rng := rand.New(rand.NewSource(1))
				a := gemmRand(rng, m*k)
				c := make([]float32, m*n)
				q, _ := QuantizeBF16(gemmRand(rng, n*k), n, k)
				runs := []func(){
					func() { GemmQ(m, a, k, q, c, n, Epilogue{}) },
					func() {
						prev := SetBF16Gemm(false)
						GemmQ(m, a, k, q, c, n, Epilogue{})
						SetBF16Gemm(prev)
					},
				}
				el := [2]time.Duration{1 << 62, 1 << 62}
				for _, r := range runs {
					r()
				}
				for b.Loop() {
					for i, r := range runs {
						t0 := time.Now()
						r()
						el[i] = min(el[i], time.Since(t0))
					}
				}
				b.ReportMetric(float64(el[0].Microseconds()), "bf16-us")
				b.ReportMetric(el[0].Seconds()/el[1].Seconds(), "bf16/dequant")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
