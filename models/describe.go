package models

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// Info is a model's parameters and FLOPs by layer type (slab info's JSON).
type Info struct {
	Model    string           `json:"model"`
	Family   string           `json:"family"`
	Task     Task             `json:"task"`
	Summary  string           `json:"summary"`
	Config   any              `json:"config"`
	Params   int64            `json:"params"`
	FLOPs    map[string]int64 `json:"flops_by_layer"`
	Total    int64            `json:"flops_total"`
	GFLOPs   float64          `json:"gflops"`
	Per      string           `json:"flops_per"`
	TrainMul int              `json:"train_flops_multiplier"`
}

// FLOPsPer names the unit of a family's FLOPs figure.
func FLOPsPer(t Task) string {
	if t == TaskLM {
		return "token at full context"
	}
	return "image"
}

// Describe resolves name with opts (Resolve) and counts its parameters and
// FLOPs without building it.
func Describe(name string, opts map[string]string) (Info, error) {
	e, cfg, err := Resolve(name, opts)
	if err != nil {
		return Info{}, err
	}
	r := Info{Model: name, Family: e.Family.Name, Task: e.Family.Task, Summary: cfg.Summary(), Config: cfg,
		Params: cfg.ParamCount(), FLOPs: cfg.FLOPsByLayer(), Total: cfg.FLOPs(), Per: FLOPsPer(e.Family.Task), TrainMul: 3}
	r.GFLOPs = float64(r.Total) / 1e9
	return r, nil
}

// WriteTable prints r as slab info does: a header, then FLOPs by layer type.
func (r Info) WriteTable(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(out, "%s (%s family): %s\n", r.Model, r.Family, r.Summary)
	fmt.Fprintf(out, "parameters: %d (%.3f M)\n", r.Params, float64(r.Params)/1e6)
	keys := make([]string, 0, len(r.FLOPs))
	for k := range r.FLOPs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "layer type\tFLOPs per %s\tshare\t\n", r.Per)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%d\t%.1f%%\t\n", k, r.FLOPs[k], 100*float64(r.FLOPs[k])/float64(max(r.Total, 1)))
	}
	fmt.Fprintf(w, "total\t%d\t(%.4f GFLOP, multiply-add = 2)\t\n", r.Total, r.GFLOPs)
	return w.Flush()
}

// Row is one registered model as slab models lists it.
type Row struct {
	Name    string  `json:"name"`
	Family  string  `json:"family"`
	Task    Task    `json:"task"`
	Norm    string  `json:"norm"`
	Attn    string  `json:"attn"`
	Summary string  `json:"summary"`
	Params  int64   `json:"params"`
	GFLOPs  float64 `json:"gflops"`
	Per     string  `json:"flops_per"`
	Config  any     `json:"config"`
}

// Rows describes every registered model, in registry order.
func Rows() []Row {
	var rows []Row
	for _, e := range Entries() {
		c := e.Config()
		rows = append(rows, Row{Name: e.Name, Family: e.Family.Name, Task: e.Family.Task, Norm: c.NormSpec().Kind,
			Attn: c.Get("attn"), Summary: c.Summary(), Params: c.ParamCount(), GFLOPs: float64(c.FLOPs()) / 1e9,
			Per: FLOPsPer(e.Family.Task), Config: c})
	}
	return rows
}

// Catalog is slab models' JSON: every family and every registered model.
func Catalog() map[string]any {
	fams := []map[string]string{}
	for _, f := range Families() {
		fams = append(fams, map[string]string{"name": f.Name, "task": string(f.Task), "doc": f.Doc})
	}
	return map[string]any{"families": fams, "models": Rows()}
}

// WriteCatalog prints every family, then a table of every registered model.
func WriteCatalog(out io.Writer) error {
	for _, f := range Families() {
		fmt.Fprintf(out, "family %s (%s): %s\n", f.Name, f.Task, f.Doc)
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "model\tfamily\tnorm\tattn\tparams\tGFLOP\tper\tshape")
	for _, r := range Rows() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.2fM\t%.3f\t%s\t%s\n", r.Name, r.Family, r.Norm, r.Attn, float64(r.Params)/1e6, r.GFLOPs, r.Per, r.Summary)
	}
	return w.Flush()
}
