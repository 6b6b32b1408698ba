package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkPeerOps times the non-GEMM operations issue 2 compares with
// PyTorch's own (tools/reference/bench_elementwise.py measures the same
// shapes in the same session): softmax over rows, LayerNorm forward, GELU
// forward and backward on 197x192 (ViT-Tiny, one image), and the
// depthwise conv forward, 3x3 and 5x5, on 14x14x192 and 56x56x96 (a
// channels-last map), each on both kernel paths and on 1 and 2 threads.
// Names are OP/SHAPE/PATH/tTHREADS. GB/s counts bytes read and written
// once (8 per element, 12 for GELU backward; conv: input and output);
// "cpuGB/s" and, for the conv, "GFLOP/s"/"cpuGFLOP/s" per CPU-second times
// the thread count, which stays meaningful when the machine is loaded.
//
//	go test -run '^$' -bench PeerOps -benchtime 2000x ./kernels/
func BenchmarkPeerOps(b *testing.B) {
	type op struct {
		name  string
		bytes int64
		flops float64
		run   func()
	}
	var ops []op
	const rows, c = 197, 192
	x, dy := randSlice(rows*c, 1), randSlice(rows*c, 2)
	y := make([]float32, rows*c)
	w, bb := randSlice(c, 3), randSlice(c, 4)
	mean, rstd := make([]float32, rows), make([]float32, rows)
	softmaxFn := func(lo, hi int) { SoftmaxRows(y[lo*c:], x[lo*c:], hi-lo, c, c) }
	ops = append(ops,
		op{"softmax/197x192", 8 * rows * c, 0, func() { ParallelFor(rows, 16, softmaxFn) }},
		op{"layernorm/197x192", 8 * rows * c, 0, func() { LayerNormForward(y, mean, rstd, x, w, bb, rows, c, 1e-6) }},
		op{"gelu/197x192", 8 * rows * c, 0, func() { GELU(y, x) }},
		op{"gelu_backward/197x192", 12 * rows * c, 0, func() { GELUBackward(y, dy, x) }},
	)
	for _, sh := range []struct{ h, w, c int }{{14, 14, 192}, {56, 56, 96}} {
		for _, k := range []int{3, 5} {
			n := sh.h * sh.w
			in, out := randSlice(n*sh.c, 5), make([]float32, n*sh.c)
			wt, bias := randSlice(k*k*sh.c, 6), randSlice(sh.c, 7)
			fn := func(lo, hi int) { DWConvCL(out, sh.c, in, sh.c, sh.h, sh.w, sh.c, k, wt, bias, lo, hi, false) }
			ops = append(ops, op{fmt.Sprintf("dwconv%dx%d/%dx%dx%d", k, k, sh.h, sh.w, sh.c), int64(8 * n * sh.c),
				float64(2 * k * k * n * sh.c), func() { ParallelFor(sh.h, 1, fn) }})
		}
	}
	for _, o := range ops {
		for _, p := range vecPathsB() {
			for _, th := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/t%d", o.name, p, th), func(b *testing.B) {
					prev, _ := SetKernelPath(p)
					defer SetKernelPath(prev)
					pt := Threads()
					SetThreads(th)
					defer SetThreads(pt)
					o.run()
					b.SetBytes(o.bytes)
					c0 := processCPU()
					for b.Loop() {
						o.run()
					}
					dc := (processCPU() - c0).Seconds() / float64(th)
					if dc > 0 {
						b.ReportMetric(float64(o.bytes)*float64(b.N)/dc/1e9, "cpuGB/s")
					}
					if o.flops > 0 {
						b.ReportMetric(o.flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
						if dc > 0 {
							b.ReportMetric(o.flops*float64(b.N)/dc/1e9, "cpuGFLOP/s")
						}
					}
				})
			}
		}
	}
}

// vecPathsB is vecPaths for benchmarks: the fast path first, then the
// pure-Go fallback.
func vecPathsB() []Path {
	ps := vecPaths()
	for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
		ps[i], ps[j] = ps[j], ps[i]
	}
	return ps
}
