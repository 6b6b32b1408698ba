package main

import (
	"errors"
	"strings"

	"github.com/slabml/slab/bench"
	"github.com/slabml/slab/models"
)

func init() {
	register(&command{Name: "bench", Summary: "inference latency of several models, interleaved round by round", Run: runCmd(cmdBench)})
}

// benchResult is the JSON of slab bench.
type benchResult = bench.ClassifyResult

func cmdBench(args []string) error {
	fs := newFlags("bench", "bench --models a,b,... [--dtype f32,bf16,int8] [--batch N] [--size S] [--rounds R] [--warmup W] [--threads T] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	names := fs.String("models", "", "comma-separated registry names (see slab models); ratios are relative to the first")
	batch := fs.Int("batch", 1, "images per forward")
	size := fs.Int("size", 0, "input side (0 = each model's own)")
	rounds := fs.Int("rounds", 30, "timed rounds; each round runs every model once, in order")
	warmup := fs.Int("warmup", 3, "untimed rounds first")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	seed := fs.Uint64("seed", 0, "seed of the random weights and input")
	prepack := fs.Bool("prepack", true, "pack Linear weights once (nn.Prepack), as slab eval and classify do")
	dtypeList := fs.String("dtype", "f32", "comma list of Linear weight dtypes (f32, bf16, int8): each model runs in each, interleaved round by round")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the warm-up and timed rounds to this file")
	flagRange(fs, "[1, 65536]", "batch")
	flagRange(fs, "[0, 4096]", "size")
	flagRange(fs, "[1, inf)", "rounds")
	flagRange(fs, "[0, inf)", "warmup")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *names == "" {
		return flagErr("models", "is required (e.g. --models slab_deit_tiny,deit_tiny)")
	}
	dtypes, err := parseDtypes(*dtypeList)
	if err != nil {
		return err
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	vs, err := bench.Classifiers(splitNames(*names), *size, *batch, *seed, *prepack)
	if err != nil {
		return modelsErr(err)
	}
	if vs, err = bench.ClassifiersWithDtypes(vs, dtypes); err != nil {
		return flagErr("dtype", "%v", err)
	}
	stop, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	res, err := bench.Classify(vs, bench.ClassifyOptions{Batch: *batch, Size: *size, Rounds: *rounds, Warmup: *warmup, Seed: *seed})
	stop()
	if err != nil || *jsonOut {
		return jsonOr(res, err, *jsonOut)
	}
	return res.WriteTable(stdout, *warmup)
}

// splitNames splits a comma-separated --models list.
func splitNames(list string) []string {
	names := strings.Split(list, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	return names
}

// modelsErr names --models for an error about a model of the list.
func modelsErr(err error) error {
	if ie := (*models.InputError)(nil); errors.As(err, &ie) && (ie.Input == "name" || ie.Input == "vocab") {
		return flagErr(map[string]string{"name": "models", "vocab": "tokenizer"}[ie.Input], "%v", ie.Err)
	}
	return modelErr(err, "")
}
