package main

import (
	"flag"
	"strings"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
)

// --dtype runs a model with every Linear weight stored as bf16 or int8
// (nn.Quantize, docs/bench-lowprec.md): inference only, applied after
// loading and folding, the float32 parameters unchanged.

// dtypeFlag registers --dtype on fs.
func dtypeFlag(fs *flag.FlagSet) *string {
	return fs.String("dtype", "f32", "store every Linear weight as f32, bf16 or int8 for inference")
}

// parseDtypes reads a comma list of dtypes (bench and bench-lm).
func parseDtypes(s string) ([]kernels.Dtype, error) {
	var ds []kernels.Dtype
	for _, f := range strings.Split(s, ",") {
		d, err := kernels.ParseDtype(strings.TrimSpace(f))
		if err != nil {
			return nil, flagErr("dtype", "%v", err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// applyDtype quantizes m's Linears to the dtype named by s (f32: none).
func applyDtype(m nn.Module, s string) (kernels.Dtype, error) {
	d, err := kernels.ParseDtype(strings.TrimSpace(s))
	if err != nil {
		return d, flagErr("dtype", "%v", err)
	}
	if d == kernels.F32 {
		return d, nil
	}
	if _, err := nn.Quantize(m, d); err != nil {
		return d, flagErr("dtype", "%v", err)
	}
	return d, nil
}
