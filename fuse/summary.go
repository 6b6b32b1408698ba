package fuse

import (
	"fmt"
	"io"

	"github.com/slabml/slab/models"
)

// FileSummary is a FoldFile run as slab fuse reports it (its JSON).
type FileSummary struct {
	In          string  `json:"in"`
	Out         string  `json:"out"`
	Model       string  `json:"model"`
	Norm        string  `json:"norm_before"`
	Family      string  `json:"family"`
	Params      int64   `json:"params_before"`
	FusedParams int64   `json:"params_after"`
	FLOPs       int64   `json:"flops_before"`
	FusedFLOPs  int64   `json:"flops_after"`
	MaxAbsDiff  float64 `json:"max_abs_logit_diff"`
	MaxLogit    float64 `json:"max_abs_logit"`
}

// Summary describes r, the folding of in into out.
func (r *FileReport) Summary(in, out string) FileSummary {
	m, d := r.Model, r.Folded
	return FileSummary{In: in, Out: out, Model: models.ConfigName(m.Config()), Family: m.Family(), Norm: m.Config().NormSpec().Kind,
		Params: models.NumParams(m), FusedParams: models.NumParams(d), FLOPs: m.Config().FLOPs(), FusedFLOPs: d.Config().FLOPs(),
		MaxAbsDiff: r.MaxAbsDiff, MaxLogit: r.MaxLogit}
}

// WriteText prints s as slab fuse does, one line.
func (s FileSummary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "folded %s (%s, %d params, %d FLOPs per input) into %s (%d params, %d FLOPs); eval outputs differ by at most %.3g (max |logit| %.3g)\n",
		s.In, s.Norm, s.Params, s.FLOPs, s.Out, s.FusedParams, s.FusedFLOPs, s.MaxAbsDiff, s.MaxLogit)
}
