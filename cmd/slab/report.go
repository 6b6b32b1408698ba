package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/slabml/slab/train"
)

func init() {
	register(&command{Name: "report", Summary: "the main job's comparison table from the JSON of train/eval/bench", Run: runCmd(cmdReport)})
}

// reportRow is one model of the main-job table.
type reportRow = train.ReportRow

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

func cmdReport(args []string) error {
	fs := newFlags("report", "report --slab-train T.json --twin-train T.json --slab-eval E.json --slab-fused-eval E.json --twin-eval E.json --bench B.json [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	var st, tt trainResult
	var se, sf, te evalResult
	var b benchResult
	inputs := []struct {
		name, path string
		v          any
	}{{"slab-train", "slab train --json output of the SLAB model", &st}, {"twin-train", "slab train --json output of the twin", &tt},
		{"slab-eval", "slab eval --json output of the SLAB model (unfolded)", &se}, {"slab-fused-eval", "slab eval --json output of the folded SLAB model", &sf},
		{"twin-eval", "slab eval --json output of the twin", &te}, {"bench", "slab bench --json output (batch 1)", &b}}
	for i := range inputs {
		fs.StringVar(&inputs[i].path, inputs[i].name, "", inputs[i].path)
	}
	if err := noArgs(fs, args); err != nil {
		return err
	}
	for _, f := range inputs { // in the usage's order: the same flag named every run
		if f.path == "" {
			return flagErr(f.name, "is required")
		}
		if err := readJSON(f.path, f.v); err != nil {
			return flagErr(f.name, "%v", err)
		}
	}
	rows := train.Report(st, tt, se, sf, te, b)
	if *jsonOut {
		return emitJSON(map[string]any{"rows": rows, "bench_threads": b.Threads})
	}
	return train.WriteReport(stdout, rows)
}
