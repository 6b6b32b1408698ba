package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models/vit"
	"github.com/slabml/slab/tensor"
	"github.com/slabml/slab/train"
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
	Params      int     `json:"params_before"`
	FusedParams int     `json:"params_after"`
	FLOPs       int64   `json:"flops_per_image_before"`
	FusedFLOPs  int64   `json:"flops_per_image_after"`
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
	lm, err := loadModel(*in)
	if err != nil {
		return flagErr("weights", "%v", err)
	}
	m := lm.Model
	d, err := fuse.Fuse(m)
	if err != nil {
		return err
	}
	diff, maxLogit, err := compareModels(m, d, 8, 1)
	if err != nil {
		return err
	}
	meta := map[string]string{"model_config": configJSON(d.Cfg), "fused_from": *in}
	if err := checkpoint.Write(*out, train.WeightsFile(d.Params(), d.Buffers(), meta)); err != nil {
		return err
	}
	r := fuseResult{In: *in, Out: *out, Model: m.Cfg.Name, Norm: m.Cfg.Norm, Params: m.NumParams(), FusedParams: d.NumParams(),
		FLOPs: m.TotalFLOPs(), FusedFLOPs: d.TotalFLOPs(), MaxAbsDiff: diff, MaxLogit: maxLogit}
	if *jsonOut {
		return emitJSON(r)
	}
	fmt.Fprintf(stdout, "folded %s (%s, %d params, %d FLOPs/image) into %s (%d params, %d FLOPs/image); eval logits differ by at most %.3g (max |logit| %.3g)\n",
		*in, m.Cfg.Norm, r.Params, r.FLOPs, *out, r.FusedParams, r.FusedFLOPs, diff, maxLogit)
	return nil
}

// compareModels runs both models in eval mode on the same random batch and
// returns the largest absolute logit difference and the largest |logit|.
func compareModels(a, b *vit.Model, batch int, seed uint64) (diff, maxLogit float64, err error) {
	c := a.Cfg
	x := tensor.New(batch, c.InChans, c.ImgSize, c.ImgSize)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	ya, err := a.Forward(x, false)
	if err != nil {
		return 0, 0, err
	}
	ya = ya.Clone()
	yb, err := b.Forward(x, false)
	if err != nil {
		return 0, 0, err
	}
	for i := range ya.Data {
		diff = math.Max(diff, math.Abs(float64(ya.Data[i]-yb.Data[i])))
		maxLogit = math.Max(maxLogit, math.Abs(float64(ya.Data[i])))
	}
	return diff, maxLogit, nil
}
