package main

import (
	"fmt"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
)

func init() {
	register(&command{Name: "fuse", Summary: "fold every RepBN/BN into the following Linear (deploy model)", Run: runCmd(cmdFuse)})
}

// fuseResult is the JSON of slab fuse.
type fuseResult struct {
	In          string  `json:"in"`
	Out         string  `json:"out"`
	Model       string  `json:"model"`
	Norm        string  `json:"norm_before"`
	Family      string  `json:"family"`
	Params      int64   `json:"params_before"`
	FusedParams int64   `json:"params_after"`
	FLOPs       int64   `json:"flops_before"`
	FusedFLOPs  int64   `json:"flops_after"`
	MaxAbsDiff  float64 `json:"max_abs_logit_diff"`
	MaxLogit    float64 `json:"max_abs_logit"`
}

func cmdFuse(args []string) error {
	fs := newFlags("fuse", "fuse --weights IN --out OUT [--force] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	in := fs.String("weights", "", "checkpoint or weights file to fold (written by slab train)")
	out := fs.String("out", "", "where to write the folded weights (safetensors)")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	threads := fs.Int("threads", 0, "threads (0 = all cores)")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return flagErr("weights", "is required")
	}
	if *out == "" {
		return flagErr("out", "is required")
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if err := checkOutput(*out, "--out", *force); err != nil {
		return err
	}
	rep, err := fuse.FoldFile(*in, *out)
	if err != nil {
		return flagErr("weights", "%v", err)
	}
	warn(rep.Warnings)
	m, d, diff, maxLogit := rep.Model, rep.Folded, rep.MaxAbsDiff, rep.MaxLogit
	r := fuseResult{In: *in, Out: *out, Model: nameOf(m), Family: m.Family(), Norm: normOf(m), Params: models.NumParams(m), FusedParams: models.NumParams(d),
		FLOPs: m.Config().FLOPs(), FusedFLOPs: d.Config().FLOPs(), MaxAbsDiff: diff, MaxLogit: maxLogit}
	if *jsonOut {
		return emitJSON(r)
	}
	fmt.Fprintf(stdout, "folded %s (%s, %d params, %d FLOPs per input) into %s (%d params, %d FLOPs); eval outputs differ by at most %.3g (max |logit| %.3g)\n",
		*in, r.Norm, r.Params, r.FLOPs, *out, r.FusedParams, r.FusedFLOPs, diff, maxLogit)
	return nil
}
