package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
)

func init() {
	register(&command{Name: "report", Summary: "the main job's comparison table from the JSON of train/eval/bench", Run: runCmd(cmdReport)})
}

// reportRow is one model of the main-job table.
type reportRow struct {
	Label         string  `json:"label"`
	Model         string  `json:"model"`
	Norm          string  `json:"norm"`
	Attn          string  `json:"attn"`
	Epochs        int     `json:"epochs"`
	Accuracy      float64 `json:"test_acc"`
	FusedAccuracy float64 `json:"test_acc_fused,omitempty"`
	Params        int64   `json:"params"`
	FusedParams   int64   `json:"params_fused,omitempty"`
	FLOPs         int64   `json:"flops_per_image"`
	FusedFLOPs    int64   `json:"flops_per_image_fused,omitempty"`
	LatencyMS     float64 `json:"latency_b1_ms"`
	FusedLatency  float64 `json:"latency_b1_fused_ms,omitempty"`
	TrainImgPerS  float64 `json:"train_images_per_s"`
	TrainGFLOPs   float64 `json:"train_gflop_per_s"`
	TrainSeconds  float64 `json:"train_seconds"`
}

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
	lat := map[string]float64{}
	for _, r := range b.Results {
		lat[r.Model] = r.MedianMS
	}
	rows := []reportRow{
		{Label: "SLAB (prepbn+sla)", Model: st.Model, Norm: st.Norm, Attn: st.Attn, Epochs: st.Epochs, Accuracy: se.Accuracy,
			FusedAccuracy: sf.Accuracy, Params: se.Params, FusedParams: sf.Params, FLOPs: se.FLOPs, FusedFLOPs: sf.FLOPs,
			LatencyMS: lat[st.Model+"/unfused"], FusedLatency: lat[st.Model], TrainImgPerS: st.TrainImgPerSec,
			TrainGFLOPs: st.TrainGFLOPPerS, TrainSeconds: st.TrainSeconds},
		{Label: "twin (layernorm+softmax)", Model: tt.Model, Norm: tt.Norm, Attn: tt.Attn, Epochs: tt.Epochs, Accuracy: te.Accuracy,
			Params: te.Params, FLOPs: te.FLOPs, LatencyMS: lat[tt.Model], TrainImgPerS: tt.TrainImgPerSec,
			TrainGFLOPs: tt.TrainGFLOPPerS, TrainSeconds: tt.TrainSeconds},
	}
	if *jsonOut {
		return emitJSON(map[string]any{"rows": rows, "bench_threads": b.Threads})
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "model\tnorm/attn\tepochs\ttest acc\tfolded acc\tparams\tfolded params\tMFLOP/img\tfolded\tB=1 ms\tfolded ms\ttrain img/s\ttrain GFLOP/s\t")
	for _, r := range rows {
		fa, fp, ff, fl := "-", "-", "-", "-"
		if r.FusedParams > 0 {
			fa = fmt.Sprintf("%.2f%%", 100*r.FusedAccuracy)
			fp = fmt.Sprint(r.FusedParams)
			ff = fmt.Sprintf("%.2f", float64(r.FusedFLOPs)/1e6)
			fl = fmt.Sprintf("%.3f", r.FusedLatency)
		}
		fmt.Fprintf(w, "%s\t%s/%s\t%d\t%.2f%%\t%s\t%d\t%s\t%.2f\t%s\t%.3f\t%s\t%.0f\t%.1f\t\n", r.Model, r.Norm, r.Attn, r.Epochs,
			100*r.Accuracy, fa, r.Params, fp, float64(r.FLOPs)/1e6, ff, r.LatencyMS, fl, r.TrainImgPerS, r.TrainGFLOPs)
	}
	return w.Flush()
}
