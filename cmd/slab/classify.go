package main

import (
	"fmt"

	"github.com/slabml/slab"
)

func init() {
	register(&command{Name: "classify", Summary: "top-k classes of JPEG/PNG images (ImageNet eval preprocessing)", Run: runCmd(cmdClassify)})
}

// classifyResult is the JSON of slab classify.
type classifyResult = slab.ClassifyReport

func cmdClassify(args []string) error {
	fs := newFlags("classify", "classify --weights FILE [--model NAME] [--top K] [--data SET] [--fuse] [--json] IMAGE...")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	model := fs.String("model", "", "registry name (required for official .pth or config-less weights)")
	weights := fs.String("weights", "", "slab weights/checkpoint, safetensors state dict or official .pth")
	top := fs.Int("top", 5, "number of classes to print per image")
	dataName := fs.String("data", "fashion-mnist", "class names and normalisation of a 1-channel model: fashion-mnist or mnist (3-channel models use ImageNet's)")
	doFuse := fs.Bool("fuse", false, "fold the norms into the Linears first (deploy model)")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	dtype := dtypeFlag(fs)
	flagRange(fs, "[1, inf)", "top")
	images, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *weights == "" {
		return flagErr("weights", "is required")
	}
	if len(images) == 0 {
		return fmt.Errorf("no IMAGE given")
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	m, warnings, err := openWeights(*weights, *model, *doFuse)
	if err != nil {
		return err
	}
	warn(warnings)
	if *dataName != "fashion-mnist" && *dataName != "mnist" {
		return flagErr("data", "unknown data set %q (fashion-mnist or mnist)", *dataName)
	}
	opts := []slab.Option{slab.Dataset(*dataName)}
	if *dtype != "" {
		opts = append(opts, slab.Dtype(*dtype))
	}
	sm, err := slab.Wrap(m, nil, opts...)
	if err != nil {
		return dtypeErr(err)
	}
	if classes := m.Classes(); *top <= 0 || *top > classes {
		return flagErr("top", "must be in 1..%d, got %d", classes, *top)
	}
	preds, err := sm.ClassifyFiles(images, *top)
	if err != nil {
		return err
	}
	ch, size, _ := m.InputShape()
	res := slab.NewClassifyReport(nameOf(m), normOf(m), ch, size, images, preds)
	if *jsonOut {
		return emitJSON(res)
	}
	res.WriteText(stdout)
	return nil
}
