package kernels

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// Low-precision benchmarks, each against a ceiling measured in the same
// process: GEMMs with bf16/int8 weights as a fraction of the float32 FMA
// peak, of the VDPBF16PS peak and of the VPDPBUSD peak; GEMVs as a
// fraction of the DRAM read rate (ReadAll over 256 MiB).
//
//	go test -run '^$' -bench 'PeakLowPrec|GEMMQ|GEMVQ' -count 3 ./kernels/

// lowPrecPeakRun runs dtype d's peak loop (F32: the FMA loop) on t
// threads and returns G operations per second.
func lowPrecPeakRun(d Dtype, t, iters int) float64 {
	f, per := lowPrecPeak(d)
	if d == F32 {
		f, per = peakLoop(bestPath)
	}
	if f == nil {
		return 0
	}
	prev := Threads()
	SetThreads(t)
	defer SetThreads(prev)
	start := time.Now()
	ParallelFor(t, 1, func(lo, hi int) {
		for range hi - lo {
			f(iters)
		}
	})
	return float64(t) * float64(iters) * per / time.Since(start).Seconds() / 1e9
}

var lowPrecPeaks struct {
	sync.Once
	g [3]float64 // by Dtype: GFLOP/s (f32, bf16), GOP/s (int8)
}

// deitShapes are the m x k x n products of DeiT-Tiny and DeiT-Small at
// batch 1 (197 tokens: qkv, fc1, fc2 and their Small forms) and one at
// batch 32, on which the low-precision GEMMs are held against float32.
var deitShapes = [][3]int{{197, 192, 576}, {197, 192, 768}, {197, 768, 192}, {197, 384, 1152},
	{197, 384, 1536}, {197, 1536, 384}, {6304, 384, 1536}}

// measuredLowPrecPeaks is the best of 10 short all-thread runs of each
// peak loop, interleaved, once per process.
func measuredLowPrecPeaks() [3]float64 {
	lowPrecPeaks.Do(func() {
		for range 10 {
			for d := F32; d <= Int8; d++ {
				lowPrecPeaks.g[d] = max(lowPrecPeaks.g[d], lowPrecPeakRun(d, Threads(), 1_000_000))
			}
		}
	})
	return lowPrecPeaks.g
}

func BenchmarkPeakLowPrec(b *testing.B) {
	for d := F32; d <= Int8; d++ {
		b.Run(d.String(), func(b *testing.B) {
			if f, _ := lowPrecPeak(d); f == nil && d != F32 || bestPath != PathAVX512 {
				b.Skip("no peak loop for this dtype on this CPU")
			}
			var best float64
			for b.Loop() {
				best = max(best, lowPrecPeakRun(d, Threads(), 1_000_000))
			}
			b.ReportMetric(best, "GOP/s")
		})
	}
}

// BenchmarkGEMMQ times Linear shapes y = x W^T with W in each dtype.
func BenchmarkGEMMQ(b *testing.B) {
	peaks := measuredLowPrecPeaks()
	// DeiT-Tiny/Small's Linears at batch 1 (qkv, fc1, fc2) and DeiT-Small's fc1 at batch 32.
	for _, s := range [][3]int{{1024, 1024, 1024}, {197, 192, 576}, {197, 192, 768}, {197, 768, 192}, {197, 384, 1152},
		{197, 384, 1536}, {197, 1536, 384}, {6304, 192, 768}, {6304, 384, 1536}, {128, 1024, 2816}} {
		m, k, n := s[0], s[1], s[2]
		for d := F32; d <= Int8; d++ {
			b.Run(fmt.Sprintf("%dx%dx%d/%v", m, k, n, d), func(b *testing.B) {
				rng := rand.New(rand.NewSource(1))
				a := gemmRand(rng, m*k)
				w := gemmRand(rng, n*k)
				c := make([]float32, m*n)
				var q *QMatrix
				if d != F32 {
					var err error
					if q, err = Quantize(d, w, n, k); err != nil {
						b.Fatal(err)
					}
				}
				run := func() {
					if q == nil {
						GemmEpilogue(false, true, m, n, k, a, k, w, k, c, n, Epilogue{})
					} else {
						GemmQ(m, a, k, q, c, n, Epilogue{})
					}
				}
				run()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					run()
				}
				gf := 2 * float64(m*n*k) * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gf, "GFLOP/s")
				for pd, unit := range []string{"%f32peak", "%bf16peak", "%vnnipeak"} {
					if peaks[pd] > 0 {
						b.ReportMetric(100*gf/peaks[pd], unit)
					}
				}
			})
		}
	}
}

var readRate struct {
	sync.Once
	gbs float64
}

// measuredReadRate is the best of five ReadAll passes over 256 MiB, GB/s.
func measuredReadRate() float64 {
	readRate.Do(func() {
		buf := make([]float32, 64<<20)
		for i := range buf {
			buf[i] = 1
		}
		for range 5 {
			t0 := time.Now()
			ReadAll(buf)
			readRate.gbs = max(readRate.gbs, float64(4*len(buf))/time.Since(t0).Seconds()/1e9)
		}
	})
	return readRate.gbs
}

// BenchmarkGEMVQ streams LLaMA-350M-sized decode GEMVs (W cycled through
// >= 256 MiB of copies, so every call reads W from DRAM) in each dtype and
// reports the weight bytes read per second against ReadAll's rate.
func BenchmarkGEMVQ(b *testing.B) {
	bw := measuredReadRate()
	for _, s := range [][2]int{{1024, 2816}, {2816, 1024}, {1024, 1024}} {
		k, n := s[0], s[1]
		for _, mode := range []string{"f32", "bf16", "bf16dot", "int8"} {
			b.Run(fmt.Sprintf("1x%dx%d/%s", k, n, mode), func(b *testing.B) {
				d := F32
				switch mode {
				case "bf16", "bf16dot":
					d = BF16
				case "int8":
					d = Int8
				}
				defer SetBF16Dot(SetBF16Dot(mode == "bf16dot"))
				rng := rand.New(rand.NewSource(1))
				x := gemmRand(rng, k)
				y := make([]float32, n)
				w := gemmRand(rng, n*k)
				bytes := 4 * n * k
				var q *QMatrix
				if d != F32 {
					q, _ = Quantize(d, w, n, k)
					bytes = q.Bytes()
				}
				copies := max(1, (256<<20)/bytes)
				ws := make([][]float32, 0, copies)
				qs := make([]*QMatrix, 0, copies)
				for range copies {
					if q == nil {
						ws = append(ws, append([]float32(nil), w...))
					} else {
						qs = append(qs, &QMatrix{Dtype: q.Dtype, N: q.N, K: q.K, Group: q.Group,
							BF16: append([]uint16(nil), q.BF16...), Q: append([]byte(nil), q.Q...)})
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					if q == nil {
						Gemm(false, true, 1, n, k, 1, x, k, ws[i%copies], k, 0, y, n)
					} else {
						GemvQ(x, QGemvOp{W: qs[i%copies], Y: y})
					}
					i++
				}
				gbs := float64(bytes) * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gbs, "GB/s")
				if bw > 0 {
					b.ReportMetric(100*gbs/bw, "%read")
				}
			})
		}
	}
}

// BenchmarkGEMVQCache runs one thread's GEMV kernels on a 256 x 1024
// matrix that stays in L2 (int8: the groups-of-64 band kernel, int8g the
// generic one, int8f the float one), so the figure (weights per CPU-nanosecond)
// is the kernel's compute ceiling, to set beside what the DRAM stream
// needs: at 60 GB/s, 15 (f32), 30 (bf16) or 56 (int8) weights/ns in all.
func BenchmarkGEMVQCache(b *testing.B) {
	n, k := 256, 1024
	defer SetThreads(Threads())
	SetThreads(1)
	rng := rand.New(rand.NewSource(1))
	x := gemmRand(rng, k)
	y := make([]float32, n)
	w := gemmRand(rng, n*k)
	for _, mode := range []string{"f32", "bf16", "bf16dot", "int8", "int8g", "int8f"} {
		b.Run(mode, func(b *testing.B) {
			defer SetBF16Dot(SetBF16Dot(mode == "bf16dot"))
			noI8X16, noI8G64 = mode == "int8f", mode == "int8g"
			defer func() { noI8X16, noI8G64 = false, false }()
			var q *QMatrix
			switch mode {
			case "bf16", "bf16dot":
				q, _ = Quantize(BF16, w, n, k)
			case "int8", "int8g", "int8f":
				q, _ = Quantize(Int8, w, n, k)
			}
			c0 := processCPU()
			for b.Loop() {
				if q == nil {
					Gemm(false, true, 1, n, k, 1, x, k, w, k, 0, y, n)
				} else {
					GemvQ(x, QGemvOp{W: q, Y: y})
				}
			}
			if cpu := processCPU() - c0; cpu > 0 {
				b.ReportMetric(float64(n*k)*float64(b.N)/float64(cpu.Nanoseconds()), "weights/cpu-ns")
			}
		})
	}
}

// BenchmarkGEMVQStream replays the GEMV regions of one llama_350m decode
// step (18 layers of q,k,v as one region, o, gate and up as one region,
// down; then the 32000-row head) on bf16 and int8 weights, 1.34 GB of
// float32 in all, so every region streams from DRAM as decoding does. The
// "read" variant reads the same regions' bytes with the plain vector read
// loop, each thread one contiguous half of every matrix: the rate a
// kernel could reach on these region sizes, as against one long stream
// (bench-lm's probe). The two alternate step by step in one process so
// that the machine's bandwidth swings hit both alike; the figures are
// weight bytes per second. In four runs on 2026-12-07 the GEMV regions
// streamed as fast as the plain read of them or faster (bf16 45-59
// against 42-55 GB/s, int8 43-56 against 44-54), so what separates a low-precision
// decode from the probe's rate is the regions' length and the work
// between them, not the kernels.
func BenchmarkGEMVQStream(b *testing.B) {
	if bestPath != PathAVX512 {
		b.Skip("needs the AVX-512 kernels")
	}
	for _, d := range []Dtype{BF16, Int8} {
		rng := rand.New(rand.NewSource(1))
		type region []*QMatrix
		var regions []region
		var bytes int64
		mat := func(n, k int) *QMatrix {
			q, err := Quantize(d, gemmRand(rng, n*k), n, k)
			if err != nil {
				b.Fatal(err)
			}
			bytes += int64(q.Bytes())
			return q
		}
		for range 18 {
			regions = append(regions, region{mat(1024, 1024), mat(1024, 1024), mat(1024, 1024)},
				region{mat(1024, 1024)}, region{mat(4096, 1024), mat(4096, 1024)}, region{mat(1024, 4096)})
		}
		regions = append(regions, region{mat(32000, 1024)})
		x := gemmRand(rng, 4096)
		ys := [3][]float32{make([]float32, 32000), make([]float32, 32000), make([]float32, 32000)}
		// The serial work between a decoder's regions (norm, attention
		// over the cache): ~5 us on the caller.
		gap := func() {
			for t0 := time.Now(); time.Since(t0) < 5*time.Microsecond; {
			}
		}
		step := func() {
			for _, r := range regions {
				gap()
				var ops [3]QGemvOp
				for i, q := range r {
					ops[i] = QGemvOp{W: q, Y: ys[i][:q.N]}
				}
				GemvQ(x[:r[0].K], ops[:len(r)]...)
			}
		}
		var sink [64]float32
		var cur []*QMatrix
		read := func(lo, hi int) {
			for _, q := range cur {
				var base unsafe.Pointer
				nb := q.Bytes()
				if q.Dtype == BF16 {
					base = unsafe.Pointer(&q.BF16[0])
				} else {
					base = unsafe.Pointer(&q.Q[0])
				}
				per := nb / 4 / Threads() &^ 63
				for t := lo; t < hi; t++ {
					sink[t] += readSum(per, (*float32)(unsafe.Add(base, 4*t*per)))
				}
			}
		}
		readStep := func() {
			for _, r := range regions {
				gap()
				cur = r
				ParallelFor(Threads(), 1, read)
			}
		}
		step()
		b.Run(d.String(), func(b *testing.B) {
			var el [2]time.Duration
			var n [2]int
			for i := 0; b.Loop(); i++ {
				v := i % 2
				t0 := time.Now()
				if v == 1 {
					readStep()
				} else {
					step()
				}
				el[v] += time.Since(t0)
				n[v]++
			}
			for v, name := range []string{"gemv", "read"} {
				if n[v] > 0 {
					b.ReportMetric(float64(bytes)*float64(n[v])/el[v].Seconds()/1e9, name+"GB/s")
				}
			}
		})
	}
}
