package main

import (
	"fmt"
	"time"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
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
	threads := fs.Int("threads", 0, "threads (0 = all cores)")
	dtype := dtypeFlag(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *weights == "" {
		return flagErr("weights", "is required")
	}
	if *batch < 1 {
		return flagErr("batch", "must be >= 1, got %d", *batch)
	}
	if *limit < 0 {
		return flagErr("limit", "must be >= 0, got %d", *limit)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	lm, err := loadModel(*weights)
	if err != nil {
		return flagErr("weights", "%v", err)
	}
	m := lm.Model
	if *doFuse {
		if m, err = foldCopy(m); err != nil {
			return flagErr("fuse", "%v", err)
		}
	}
	if _, err := applyDtype(m, *dtype); err != nil {
		return err
	}
	nn.Prepack(m) // evaluation only: the weights are final
	test, err := train.OpenImages(*dataName, *dataDir, "test", *limit)
	if err != nil {
		return modelErr(err, "")
	}
	if err := train.CheckFits(test, m, *dataName); err != nil {
		return flagErr("data", "%v", err)
	}
	t0 := time.Now()
	loss, acc, err := train.Evaluate(m, test, *batch, nil, nil, nil)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	r := evalResult{Weights: *weights, Model: nameOf(m), Norm: normOf(m), Fused: normOf(m) == nn.NormNone, Dtype: *dtype, Data: *dataName,
		Images: test.Len(), Accuracy: acc, Loss: loss, Seconds: secs, ImagesPerSec: float64(test.Len()) / secs,
		Params: models.NumParams(m), FLOPs: m.Config().FLOPs(), Threads: kernels.Threads()}
	if *jsonOut {
		return emitJSON(r)
	}
	fmt.Fprintf(stdout, "%s (%s, norm %s): %s test accuracy %.2f%% (loss %.4f) on %d images, %.0f images/s\n",
		*weights, r.Model, r.Norm, *dataName, 100*acc, loss, r.Images, r.ImagesPerSec)
	return nil
}
