package nn

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/slabml/slab/kernels"
)

// BenchmarkConv2d times the general convolution at batch 1 on CSwin-T's
// stem (224x224 image, 3 -> 64, 7x7 stride 4 pad 2) and its first merge
// (56x56 token map, 64 -> 128, 3x3 stride 2 pad 1), forward and backward
// (stem: weight and bias gradients only, the image needs none; merge:
// input, weight and bias), on 1 thread and on GOMAXPROCS threads, and
// reports the median call's time and GFLOP/s and their fraction of the
// FMA peak measured by the same process ("%peak"). Flops: forward
// 2·OH·OW·Out·In·k², backward twice that (dW and dx; the stem's once).
// tools/reference/bench_conv.py times PyTorch's conv2d on the same shapes
// (docs/bench-conv.md). As kernels' BenchmarkGEMM, the rates are also
// given per CPU-second of the process times the thread count
// ("cpuGFLOP/s", "%cpupeak" against the peak loop timed the same way),
// which stays meaningful when other tenants load the machine.
//
//	go test -run '^$' -bench Conv2d -count 5 ./nn/
func BenchmarkConv2d(b *testing.B) {
	for _, sh := range []struct {
		name                   string
		in, out, k, s, p, size int
		tokens                 bool
	}{
		{"stem", 3, 64, 7, 4, 2, 224, false},
		{"merge", 64, 128, 3, 2, 1, 56, true},
	} {
		rng := rand.New(rand.NewPCG(5, 5))
		c := NewConv2d("conv", sh.in, sh.out, sh.k, sh.s, sh.p, sh.tokens)
		c.NoInputGrad = !sh.tokens
		set32(c.Weight, rnd(rng, len(c.Weight.W.Data), 0.05))
		x := t32(rnd(rng, sh.in*sh.size*sh.size, 1), 1, sh.in, sh.size, sh.size)
		if sh.tokens {
			x = x.View(1, sh.size*sh.size, sh.in)
		}
		oh, ow := c.OutSize(sh.size, sh.size)
		dy := t32(rnd(rng, oh*ow*sh.out, 1), 1, oh*ow, sh.out)
		fwd := 2 * float64(oh*ow*sh.out*sh.in*sh.k*sh.k)
		bwd := 2 * fwd
		if c.NoInputGrad {
			bwd = fwd
		}
		for _, th := range []int{1, runtime.GOMAXPROCS(0)} {
			name := fmt.Sprintf("%s/threads=%d/", sh.name, th)
			b.Run(name+"forward", func(b *testing.B) {
				withThreads(th, func() { benchConv(b, fwd, func() { c.Forward(x, sh.size, sh.size) }) })
			})
			b.Run(name+"backward", func(b *testing.B) {
				withThreads(th, func() {
					c.Forward(x, sh.size, sh.size)
					benchConv(b, bwd, func() { c.Backward(dy) })
				})
			})
		}
	}
}

// convPeaks holds the FMA peak per thread count, measured once per
// process: by the wall clock and per CPU-second (times the thread count),
// the two clocks the benchmark reports its own rates by.
var convPeaks = map[int][2]float64{}

func convPeak() (wall, cpu float64) {
	t := kernels.Threads()
	if p, ok := convPeaks[t]; ok {
		return p[0], p[1]
	}
	c0 := processCPU()
	wall, done := kernels.PeakGFLOPS(10)
	if dc := processCPU() - c0; dc > 0 {
		cpu = done / (dc.Seconds() / float64(t)) / 1e9
	}
	convPeaks[t] = [2]float64{wall, cpu}
	return wall, cpu
}

func benchConv(b *testing.B, flop float64, f func()) {
	peak, cpuPeak := convPeak()
	f()
	var ts []float64
	c0 := processCPU()
	for b.Loop() {
		t0 := time.Now()
		f()
		ts = append(ts, time.Since(t0).Seconds())
	}
	cpu := processCPU() - c0
	// The median call, not the mean: on a loaded machine a few calls wait
	// tens of milliseconds for a descheduled thread.
	g := flop / median(ts) / 1e9
	b.ReportMetric(median(ts)*1e3, "median-ms")
	b.ReportMetric(g, "GFLOP/s")
	if peak > 0 {
		b.ReportMetric(100*g/peak, "%peak")
	}
	if cpu > 0 && cpuPeak > 0 {
		gc := flop * float64(b.N) / (cpu.Seconds() / float64(kernels.Threads())) / 1e9
		b.ReportMetric(gc, "cpuGFLOP/s")
		b.ReportMetric(100*gc/cpuPeak, "%cpupeak")
	}
}
