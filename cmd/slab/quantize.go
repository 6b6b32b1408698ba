package main

import (
	"errors"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

func init() {
	register(&command{Name: "quantize", Summary: "store every Linear weight as bf16 or int8 in a new checkpoint", Run: runCmd(cmdQuantize)})
}

// quantizeResult is the JSON of slab quantize.
type quantizeResult = models.QuantizeResult

func cmdQuantize(args []string) error {
	fs := newFlags("quantize", "quantize --weights IN --dtype bf16|int8 [--group N] --out OUT [--force] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	in := fs.String("weights", "", "float32 checkpoint or weights file (any family; fold it first with slab fuse for the deploy model)")
	dtype := fs.String("dtype", "", "how to store the Linear weights: bf16, or int8 (symmetric, a float32 scale per group)")
	group := fs.Int("group", 0, "int8 scale group: 0 = 64, else 32, else 128, else the row, per Linear; -1 = one scale per output channel; N = groups of N inputs (must divide every Linear's inputs)")
	out := fs.String("out", "", "where to write the quantized weights (safetensors)")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	flagRange(fs, "[-1, 65536]", "group")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return flagErr("weights", "is required")
	}
	if *out == "" {
		return flagErr("out", "is required")
	}
	d, err := kernels.ParseDtype(*dtype)
	switch {
	case *dtype == "":
		return flagErr("dtype", "is required (bf16 or int8)")
	case err != nil:
		return flagErr("dtype", "%v", err)
	case d == kernels.F32:
		return flagErr("dtype", "want bf16 or int8 (%s is float32, what --weights holds)", *dtype)
	case *group != 0 && d != kernels.Int8:
		return flagErr("group", "sets int8 scale groups; --dtype %s has none", *dtype)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if err := checkOutput(*out, "--out", *force); err != nil {
		return err
	}
	r, err := models.QuantizeFile(*in, *out, d, *group)
	if err != nil {
		return modelErr(err, "weights")
	}
	warn(r.Warnings)
	if *jsonOut {
		return emitJSON(r)
	}
	r.WriteText(stdout)
	return nil
}

// dtypeErr names --dtype for an error of slab.Load/Wrap refusing a dtype
// other than a quantized checkpoint's own (the message names the file).
func dtypeErr(err error) error {
	if se := (*nn.StoredError)(nil); errors.As(err, &se) {
		return flagErr("dtype", "%v", se)
	}
	return err
}
