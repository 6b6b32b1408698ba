package bench

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
)

// WriteTable prints r as slab bench does; warmup is the untimed rounds run
// first (not part of the result).
func (r *ClassifyResult) WriteTable(out io.Writer, warmup int) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(out, "batch %d, %d rounds interleaved (+%d warm-up), %d threads\n", r.Batch, r.Rounds, warmup, r.Threads)
	fmt.Fprintln(w, "model\tmedian ms\tp90 ms\timages/s\tGFLOP/s\ttime / first\t")
	for _, x := range r.Results {
		fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.1f\t%.1f\t%.3f\t\n", x.Model, x.MedianMS, x.P90MS, x.ImagesPerSec, x.GFLOPs, x.TimeRatio)
	}
	return w.Flush()
}

// WriteText prints r as slab bench-lm does: the bandwidth probe, one line
// per model, the norm ratios, the evaluation rates when timed and the load
// average.
func (r *DecodeResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "DRAM read bandwidth (256 MiB, faster of read and GEMV, median of %d rounds): %.1f GB/s wall, %.1f GB/s per CPU-time; best probe %.1f GB/s\n", r.Rounds, r.BandwidthGB, r.BandwidthCPU, r.BandwidthMax)
	for _, m := range r.Models {
		fmt.Fprintf(w, "%-22s %-8s folded=%-5v %7.1f tok/s (ratio %.3f)  %7.1f tok/s per CPU-time (ratio %.3f)  decode %7.2f ms/token  prefill %7.1f ms  reads %.1f+%.1f MB/token (weights+cache)  floor %6.1f tok/s: decode at %.0f %% (CPU %.0f %%, strict %.0f %%; weights alone %.0f %%)  allocs/token %.2f\n",
			m.Name, m.Norm, m.Folded, m.TokensPerSec, r.Ratios[m.Name], m.CPUTokS, r.CPURatios[m.Name],
			m.MsPerToken, m.PrefillMs, float64(m.WeightBytes)/1e6, float64(m.CacheBytes)/1e6, m.FloorTokS, 100*m.OfFloor, 100*m.CPUOfFloor, 100*m.StrictFloor, 100*m.WeightOfFloor, m.AllocsPerTok)
	}
	for _, p := range r.Pairs {
		fmt.Fprintf(w, "%s / %s: %.3f by wall clock, %.3f by CPU time\n", p[0], p[1], r.NormRatios[p[0]], r.CPUNormRatios[p[0]])
	}
	if r.EvalBatch > 0 {
		for _, m := range r.Models {
			fmt.Fprintf(w, "%-22s evaluation %d x %d: %8.0f tok/s (ratio %.3f)  %8.0f tok/s per CPU-time\n",
				m.Name, r.EvalBatch, m.EvalSeq, m.EvalTokS, m.EvalTokS/r.Models[0].EvalTokS, m.EvalCPUTokS)
		}
	}
	fmt.Fprintf(w, "load average %s\n", r.LoadAvg)
}

// WithDtypes returns every decoder of ds in every dtype: one model per
// name, quantized once per dtype, its state switched before each run;
// named name/dtype unless the only dtype is f32.
func WithDtypes(ds []Decoder, dtypes []kernels.Dtype) ([]Decoder, error) {
	if len(dtypes) == 1 && dtypes[0] == kernels.F32 {
		return ds, nil
	}
	var out []Decoder
	for _, d := range ds {
		for _, dt := range dtypes {
			if _, err := nn.QuantizeWith(d.Model, dt, nn.QuantOptions{Keep: true}); err != nil {
				return nil, fmt.Errorf("%s: %v", d.Name, err)
			}
			q := d
			q.Name, q.Dtype, q.Quant = d.Name+"/"+dt.String(), dt.String(), nn.GetQuant(d.Model)
			out = append(out, q)
		}
	}
	return out, nil
}
