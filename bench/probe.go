package bench

import (
	"time"

	"github.com/slabml/slab/kernels"
)

// Probe measures the DRAM read rate a decode step is held against, over a
// 256 MiB buffer (far beyond the caches) read two ways: a plain vector
// read over all threads (kernels.ReadAll) and a GEMV through the path the
// decoder uses (kernels.Gemm with one row, 4096 rows of 64 KiB). Each
// Measure keeps the faster of the two, by wall clock and by process CPU
// time (bytes per CPU-second x threads: the rate if the threads had their
// cores to themselves, which matters on a shared machine). Probing between
// the timed rounds rather than once puts the floor and the decode in the
// same machine state, and the medians compare like with like.
type Probe struct {
	w, x, y []float32
	// Wall and CPU are the rates of every Measure since the last Reset,
	// in GB/s; Best the fastest wall-clock rate.
	Wall, CPU []float64
	Best      float64
}

// The probe's matrix: 256 MiB.
const probeRows, probeCols = 4096, 16384

// NewProbe allocates the probe's buffer.
func NewProbe() *Probe {
	p := &Probe{w: make([]float32, probeRows*probeCols), x: make([]float32, probeCols), y: make([]float32, probeRows)}
	for i := range p.w {
		p.w[i] = 1
	}
	return p
}

// Measure times one probe and records its rates.
func (p *Probe) Measure() {
	// Four sweeps per timing (~20 ms): CPU time is accounted in ticks.
	const sweeps = 4
	bytes := float64(sweeps * len(p.w) * 4)
	var wall, cpu float64
	for pass := 0; pass < 2; pass++ {
		c0 := CPUTime()
		t0 := time.Now()
		for range sweeps {
			if pass == 0 {
				kernels.ReadAll(p.w)
			} else {
				kernels.Gemm(false, true, 1, probeRows, probeCols, 1, p.x, probeCols, p.w, probeCols, 0, p.y, probeRows)
			}
		}
		wall = max(wall, bytes/time.Since(t0).Seconds()/1e9)
		if dc := (CPUTime() - c0).Seconds(); dc > 0 {
			cpu = max(cpu, bytes/(dc/float64(kernels.Threads()))/1e9)
		}
	}
	p.Wall = append(p.Wall, wall)
	p.CPU = append(p.CPU, cpu)
	p.Best = max(p.Best, wall)
}

// Reset forgets the measurements (after warm-up probes).
func (p *Probe) Reset() { p.Wall, p.CPU, p.Best = nil, nil, 0 }

// Summary returns the median wall and CPU-time rates and the best probe.
func (p *Probe) Summary() (wall, cpu, best float64) {
	return Median(p.Wall), Median(p.CPU), p.Best
}
