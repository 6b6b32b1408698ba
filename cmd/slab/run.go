package main

import (
	"fmt"
	"math"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

func init() {
	register(&command{Name: "run", Summary: "compute a model's logits for raw input tensors (safetensors in, safetensors out)", Run: runCmd(cmdRun)})
}

// runResult is the JSON of slab run.
type runResult struct {
	Model    string  `json:"model"`
	Norm     string  `json:"norm"`
	Input    string  `json:"input"`
	Tensor   string  `json:"input_tensor"`
	Output   string  `json:"output"`
	Images   int     `json:"images"`
	Classes  int     `json:"classes"`
	MaxLogit float64 `json:"max_abs_logit"`
}

func cmdRun(args []string) error {
	fs := newFlags("run", "run --weights FILE [--model NAME] --input IN.safetensors --output OUT.safetensors [--tensor NAME] [--fuse] [--features] [--batch N] [--force] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	model := fs.String("model", "", "registry name (required for official .pth or config-less weights)")
	weights := fs.String("weights", "", "slab weights/checkpoint, safetensors state dict or official .pth")
	input := fs.String("input", "", "safetensors file holding the input images [B,C,H,W] (or one image [C,H,W])")
	name := fs.String("tensor", "", "name of the input tensor (default: \"input\", or the file's only tensor)")
	output := fs.String("output", "", "where to write the logits [B,classes] as tensor \"logits\"")
	doFuse := fs.Bool("fuse", false, "fold the norms into the Linears first (deploy model)")
	batch := fs.Int("batch", 32, "images per forward pass")
	force := fs.Bool("force", false, "overwrite --output if it exists")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	dtype := dtypeFlag(fs)
	features := fs.Bool("features", false, "write the multi-scale stage outputs [B,C,H/s,W/s] (tensors stage1..stageN, strides in the metadata) instead of the logits")
	flagRange(fs, "[1, 65536]", "batch")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"weights", *weights}, {"input", *input}, {"output", *output}} {
		if f.v == "" {
			return flagErr(f.name, "is required")
		}
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if err := checkOutput(*output, "--output", *force); err != nil {
		return err
	}
	m, warnings, err := openWeights(*weights, *model, *doFuse)
	if err != nil {
		return err
	}
	warn(warnings)
	if _, err := applyDtype(m, *dtype); err != nil {
		return err
	}
	if *features {
		fm, ok := m.(models.FeatureModel)
		if !ok {
			return flagErr("features", "%s has no multi-scale features", nameOf(m))
		}
		maps, key, err := models.FeaturesOfFile(fm, *input, *name, *batch)
		if err != nil {
			return modelErr(err, "")
		}
		out, res := checkpoint.NewFile(), map[string]any{"model": nameOf(m), "input": *input, "input_tensor": key, "output": *output}
		for i, f := range maps {
			k := fmt.Sprintf("stage%d", i+1)
			out.Set(k, f.T)
			out.Metadata[k+"_stride"] = fmt.Sprint(f.Stride)
			res[k] = f.T.Shape
		}
		out.Metadata["model"], out.Metadata["weights"] = nameOf(m), *weights
		if err := checkpoint.Write(*output, out); err != nil {
			return err
		}
		if *jsonOut {
			return emitJSON(res)
		}
		fmt.Fprintf(stdout, "%s: %d feature maps of %s %q written to %s\n", nameOf(m), len(maps), *input, key, *output)
		return nil
	}
	logits, key, err := models.LogitsOfFile(m, *input, *name, *batch)
	if err != nil {
		return modelErr(err, "")
	}
	mname, classes := nameOf(m), m.Classes()
	out := checkpoint.NewFile()
	out.Set("logits", logits)
	out.Metadata["model"] = mname
	out.Metadata["weights"] = *weights
	if err := checkpoint.Write(*output, out); err != nil {
		return err
	}
	res := runResult{Model: mname, Norm: normOf(m), Input: *input, Tensor: key, Output: *output, Images: logits.Shape[0], Classes: classes}
	for _, v := range logits.Data {
		res.MaxLogit = math.Max(res.MaxLogit, math.Abs(float64(v)))
	}
	if *jsonOut {
		return emitJSON(res)
	}
	fmt.Fprintf(stdout, "%s (%s): logits [%d,%d] of %s %q written to %s\n", mname, res.Norm, res.Images, res.Classes, *input, key, *output)
	return nil
}
