package main

import (
	"fmt"

	"github.com/slabml/slab/train"
)

func init() {
	register(&command{Name: "eval", Summary: "test-split accuracy of a trained (or folded) model", Run: runCmd(cmdEval)})
}

// evalResult is the JSON of slab eval.
type evalResult = train.EvalResult

func cmdEval(args []string) error {
	fs := newFlags("eval", "eval --weights FILE [--fuse] [--data fashion-mnist|mnist] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	weights := fs.String("weights", "", "checkpoint or weights file written by slab train or slab fuse")
	doFuse := fs.Bool("fuse", false, "fold the norms before evaluating (BatchNorm-based models)")
	dataName := fs.String("data", "fashion-mnist", "dataset: fashion-mnist or mnist")
	dataDir := fs.String("data-dir", "", "directory of the IDX files (default /usr/share/datasets/<data>)")
	batch := fs.Int("batch", 256, "images per forward")
	limit := fs.Int("limit", 0, "evaluate only the first N test images (0 = all)")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	dtype := dtypeFlag(fs)
	flagRange(fs, "[1, 65536]", "batch")
	flagRange(fs, "[0, inf)", "limit")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *weights == "" {
		return flagErr("weights", "is required")
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	r, err := train.EvalClassifier(train.EvalOptions{Weights: *weights, Fuse: *doFuse, Dtype: *dtype, Data: *dataName, DataDir: *dataDir,
		Batch: *batch, Limit: *limit, Warn: warn})
	if err != nil {
		return modelErr(err, "")
	}
	if *jsonOut {
		return emitJSON(r)
	}
	fmt.Fprintf(stdout, "%s (%s, norm %s): %s test accuracy %.2f%% (loss %.4f) on %d images, %.0f images/s\n",
		*weights, r.Model, r.Norm, *dataName, 100*r.Accuracy, r.Loss, r.Images, r.ImagesPerSec)
	return nil
}
