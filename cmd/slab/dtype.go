package main

import (
	"flag"
	"strings"

	"github.com/slabml/slab/bench"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/train"
)

// --dtype runs a model with every Linear weight stored as bf16 or int8
// (nn.Quantize, docs/bench-lowprec.md): inference only, applied after
// loading and folding, the float32 parameters unchanged.

// dtypeFlag registers --dtype on fs, refused while parsing unless a dtype.
// Unset, the weights run in the dtype they are stored in; set, the file
// must be float32 or already in that dtype (train.Quantize), so an
// explicit --dtype f32 on a bf16 or int8 file is an error, not a silent
// run in the file's dtype.
func dtypeFlag(fs *flag.FlagSet) *string {
	p := new(string)
	fs.Var((*dtypeValue)(p), "dtype", "store every Linear weight as f32, bf16 or int8 for inference (default: as the file stores them)")
	return p
}

type dtypeValue string

func (d *dtypeValue) String() string { return string(*d) }
func (d *dtypeValue) Get() any       { return string(*d) }
func (d *dtypeValue) Set(s string) error {
	_, err := kernels.ParseDtype(s)
	*d = dtypeValue(s)
	return err
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
	d, err := train.Quantize(m, s)
	return d, modelErr(err, "")
}

// withDtypes returns every decoder of ds in every dtype (bench-lm
// --dtype f32,bf16,int8): one model per name, quantized once per dtype,
// its state switched before each run; named name/dtype unless the only
// dtype is f32.
func withDtypes(ds []bench.Decoder, dtypes []kernels.Dtype) ([]bench.Decoder, error) {
	ds, err := bench.WithDtypes(ds, dtypes)
	if err != nil {
		return nil, flagErr("dtype", "%v", err)
	}
	return ds, nil
}
