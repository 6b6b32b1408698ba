package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/slabml/slab/checkpoint"
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
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
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
	if _, err := os.Stat(*out); err == nil && !*force {
		return flagErr("out", "%s exists; pass --force to overwrite it", *out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return flagErr("out", "%v", err)
	}
	m, f, warns, err := models.Load(*in)
	if err != nil {
		return flagErr("weights", "%v", err)
	}
	for _, w := range warns {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	d, err := fuse.Copy(m)
	if err != nil {
		return err
	}
	diff, maxLogit, err := fuse.Compare(m, d, 8, 1)
	if err != nil {
		return err
	}
	meta := map[string]string{"fused_from": *in}
	for _, k := range []string{"tokenizer", "tokenizer_vocab"} { // a language model's text side
		if v, ok := f.Metadata[k]; ok {
			meta[k] = v
		}
	}
	wf, err := models.WeightsFile(d, meta)
	if err != nil {
		return err
	}
	if err := checkpoint.Write(*out, wf); err != nil {
		return err
	}
	r := fuseResult{In: *in, Out: *out, Model: nameOf(m), Family: m.Family(), Norm: normOf(m), Params: models.NumParams(m), FusedParams: models.NumParams(d),
		FLOPs: m.Config().FLOPs(), FusedFLOPs: d.Config().FLOPs(), MaxAbsDiff: diff, MaxLogit: maxLogit}
	if *jsonOut {
		return emitJSON(r)
	}
	fmt.Fprintf(stdout, "folded %s (%s, %d params, %d FLOPs per input) into %s (%d params, %d FLOPs); eval outputs differ by at most %.3g (max |logit| %.3g)\n",
		*in, r.Norm, r.Params, r.FLOPs, *out, r.FusedParams, r.FusedFLOPs, diff, maxLogit)
	return nil
}
