package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/slabml/slab/bench"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

func init() {
	register(&command{Name: "bench", Summary: "inference latency of several models, interleaved round by round", Run: runCmd(cmdBench)})
}

// benchResult is the JSON of slab bench.
type benchResult = bench.ClassifyResult

func cmdBench(args []string) error {
	fs := newFlags("bench", "bench --models a,b,... [--batch N] [--size S] [--rounds R] [--warmup W] [--threads T] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	names := fs.String("models", "", "comma-separated registry names (see slab models); ratios are relative to the first")
	batch := fs.Int("batch", 1, "images per forward")
	size := fs.Int("size", 0, "input side (0 = each model's own)")
	rounds := fs.Int("rounds", 30, "timed rounds; each round runs every model once, in order")
	warmup := fs.Int("warmup", 3, "untimed rounds first")
	threads := fs.Int("threads", 0, "threads (0 = all cores)")
	seed := fs.Uint64("seed", 0, "seed of the random weights and input")
	prepack := fs.Bool("prepack", true, "pack Linear weights once (nn.Prepack), as slab eval and classify do")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *names == "":
		return flagErr("models", "is required (e.g. --models slab_deit_tiny,deit_tiny)")
	case *batch < 1:
		return flagErr("batch", "must be >= 1, got %d", *batch)
	case *size < 0:
		return flagErr("size", "must be >= 0, got %d", *size)
	case *rounds < 1:
		return flagErr("rounds", "must be >= 1, got %d", *rounds)
	case *warmup < 0:
		return flagErr("warmup", "must be >= 0, got %d", *warmup)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	var vs []bench.Classifier
	for _, name := range strings.Split(*names, ",") {
		name = strings.TrimSpace(name)
		sz := ""
		if *size > 0 {
			sz = fmt.Sprint(*size)
		}
		e, cfg, err := resolveModel(name, map[string]string{"size": sz})
		if err != nil {
			if strings.HasPrefix(err.Error(), "flag --model") {
				return flagErr("models", "%v", errors.Unwrap(err))
			}
			return err
		}
		if e.Family.Task != models.TaskClassify {
			return flagErr("models", "%s is a %s model; slab bench times image classifiers (see slab bench-lm)", name, e.Family.Task)
		}
		mm, err := models.Build(e.Family, cfg, *seed)
		if err != nil {
			return err
		}
		m := mm.(models.Classifier)
		if !foldable(cfg) {
			vs = append(vs, bench.Classifier{Name: name, Model: m})
			continue
		}
		bench.RandomizeBuffers(m, *seed) // a non-trivial fold, as in a trained model
		d, err := foldCopy(m)
		if err != nil {
			return err
		}
		vs = append(vs, bench.Classifier{Name: name, Model: d, Fused: true}, bench.Classifier{Name: name + "/unfused", Model: m})
	}
	for _, v := range vs {
		if *prepack {
			nn.Prepack(v.Model)
		}
	}
	res, err := bench.Classify(vs, bench.ClassifyOptions{Batch: *batch, Size: *size, Rounds: *rounds, Warmup: *warmup, Seed: *seed})
	if err != nil || *jsonOut {
		return jsonOr(res, err, *jsonOut)
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "batch %d, %d rounds interleaved (+%d warm-up), %d threads\n", *batch, *rounds, *warmup, res.Threads)
	fmt.Fprintln(w, "model\tmedian ms\tp90 ms\timages/s\tGFLOP/s\ttime / first\t")
	for _, r := range res.Results {
		fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.1f\t%.1f\t%.3f\t\n", r.Model, r.MedianMS, r.P90MS, r.ImagesPerSec, r.GFLOPs, r.TimeRatio)
	}
	return w.Flush()
}
