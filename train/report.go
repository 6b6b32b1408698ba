package train

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/slabml/slab/bench"
)

// EvalResult is the JSON of slab eval: a classifier's test-split accuracy.
type EvalResult struct {
	Weights      string  `json:"weights"`
	Model        string  `json:"model"`
	Norm         string  `json:"norm"`
	Fused        bool    `json:"fused"`
	Dtype        string  `json:"dtype"` // weights of the Linears (--dtype)
	Data         string  `json:"data"`
	Images       int     `json:"images"`
	Accuracy     float64 `json:"accuracy"`
	Loss         float64 `json:"loss"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_s"`
	Params       int64   `json:"params"`
	FLOPs        int64   `json:"flops_per_image"`
	Threads      int     `json:"threads"`
}

// ReportRow is one model of the main job's comparison table.
type ReportRow struct {
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

// Report builds the main job's two rows: the SLAB model (its training run
// st, its unfolded and folded evaluations se and sf) and its twin (tt,
// te), with batch-1 latencies from b (the SLAB model's unfolded run is
// named model/unfused).
func Report(st, tt Result, se, sf, te EvalResult, b bench.ClassifyResult) []ReportRow {
	lat := map[string]float64{}
	for _, r := range b.Results {
		lat[r.Model] = r.MedianMS
	}
	return []ReportRow{
		{Label: "SLAB (prepbn+sla)", Model: st.Model, Norm: st.Norm, Attn: st.Attn, Epochs: st.Epochs, Accuracy: se.Accuracy,
			FusedAccuracy: sf.Accuracy, Params: se.Params, FusedParams: sf.Params, FLOPs: se.FLOPs, FusedFLOPs: sf.FLOPs,
			LatencyMS: lat[st.Model+"/unfused"], FusedLatency: lat[st.Model], TrainImgPerS: st.TrainImgPerSec,
			TrainGFLOPs: st.TrainGFLOPPerS, TrainSeconds: st.TrainSeconds},
		{Label: "twin (layernorm+softmax)", Model: tt.Model, Norm: tt.Norm, Attn: tt.Attn, Epochs: tt.Epochs, Accuracy: te.Accuracy,
			Params: te.Params, FLOPs: te.FLOPs, LatencyMS: lat[tt.Model], TrainImgPerS: tt.TrainImgPerSec,
			TrainGFLOPs: tt.TrainGFLOPPerS, TrainSeconds: tt.TrainSeconds},
	}
}

// WriteReport prints rows as the main job's table ("-" where a row has no
// folded model).
func WriteReport(out io.Writer, rows []ReportRow) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
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
