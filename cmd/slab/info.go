package main

import (
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/slabml/slab/models"
)

func init() {
	register(&command{Name: "info", Summary: "parameters and FLOPs of a model, by layer type", Run: runCmd(cmdInfo)})
	register(&command{Name: "models", Summary: "list every registered model of every family, vision and language", Run: runCmd(cmdModels)})
}

// infoResult is the JSON of slab info.
type infoResult struct {
	Model    string           `json:"model"`
	Family   string           `json:"family"`
	Task     models.Task      `json:"task"`
	Summary  string           `json:"summary"`
	Config   any              `json:"config"`
	Params   int64            `json:"params"`
	FLOPs    map[string]int64 `json:"flops_by_layer"`
	Total    int64            `json:"flops_total"`
	GFLOPs   float64          `json:"gflops"`
	Per      string           `json:"flops_per"`
	TrainMul int              `json:"train_flops_multiplier"`
}

// flopsPer names the unit of a family's FLOPs figure.
func flopsPer(t models.Task) string {
	if t == models.TaskLM {
		return "token at full context"
	}
	return "image"
}

func cmdInfo(args []string) error {
	fs := newFlags("info", "info MODEL [--norm N] [--attn A] [--size S] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	norm := fs.String("norm", "", "override the norm (vision: layernorm|repbn|prepbn|batchnorm|none; LM: rmsnorm|layernorm|prepbn|none)")
	attn := fs.String("attn", "", "override the attention: softmax|sla")
	size := fs.Int("size", 0, "override the input side of a vision model (0 = the model's)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want exactly one MODEL argument (see slab models), got %d", len(pos))
	}
	if *size < 0 {
		return flagErr("size", "must be >= 0, got %d", *size)
	}
	opts := map[string]string{"norm": *norm, "attn": *attn}
	if *size > 0 {
		opts["size"] = fmt.Sprint(*size)
	}
	e, cfg, err := models.Resolve(pos[0], opts)
	if ie := (*models.InputError)(nil); errors.As(err, &ie) && ie.Input == "name" {
		return fmt.Errorf("MODEL %s: %v", pos[0], ie.Err) // an argument here, not a --model flag
	} else if err != nil {
		return modelErr(err, "")
	}
	fl := cfg.FLOPsByLayer()
	r := infoResult{Model: pos[0], Family: e.Family.Name, Task: e.Family.Task, Summary: cfg.Summary(), Config: cfg,
		Params: cfg.ParamCount(), FLOPs: fl, Total: cfg.FLOPs(), Per: flopsPer(e.Family.Task), TrainMul: 3}
	r.GFLOPs = float64(r.Total) / 1e9
	if *jsonOut {
		return emitJSON(r)
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "%s (%s family): %s\n", pos[0], r.Family, r.Summary)
	fmt.Fprintf(stdout, "parameters: %d (%.3f M)\n", r.Params, float64(r.Params)/1e6)
	keys := make([]string, 0, len(fl))
	for k := range fl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "layer type\tFLOPs per %s\tshare\t\n", r.Per)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%d\t%.1f%%\t\n", k, fl[k], 100*float64(fl[k])/float64(max(r.Total, 1)))
	}
	fmt.Fprintf(w, "total\t%d\t(%.4f GFLOP, multiply-add = 2)\t\n", r.Total, r.GFLOPs)
	return w.Flush()
}

// modelEntry is one row of slab models.
type modelEntry struct {
	Name    string      `json:"name"`
	Family  string      `json:"family"`
	Task    models.Task `json:"task"`
	Norm    string      `json:"norm"`
	Attn    string      `json:"attn"`
	Summary string      `json:"summary"`
	Params  int64       `json:"params"`
	GFLOPs  float64     `json:"gflops"`
	Per     string      `json:"flops_per"`
	Config  any         `json:"config"`
}

func cmdModels(args []string) error {
	fs := newFlags("models", "models [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var rows []modelEntry
	for _, e := range models.Entries() {
		c := e.Config()
		rows = append(rows, modelEntry{Name: e.Name, Family: e.Family.Name, Task: e.Family.Task, Norm: c.NormSpec().Kind,
			Attn: c.Get("attn"), Summary: c.Summary(), Params: c.ParamCount(), GFLOPs: float64(c.FLOPs()) / 1e9,
			Per: flopsPer(e.Family.Task), Config: c})
	}
	if *jsonOut {
		fams := []map[string]string{}
		for _, f := range models.Families() {
			fams = append(fams, map[string]string{"name": f.Name, "task": string(f.Task), "doc": f.Doc})
		}
		return emitJSON(map[string]any{"families": fams, "models": rows})
	}
	for _, f := range models.Families() {
		fmt.Fprintf(stdout, "family %s (%s): %s\n", f.Name, f.Task, f.Doc)
	}
	fmt.Fprintln(stdout)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "model\tfamily\tnorm\tattn\tparams\tGFLOP\tper\tshape")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.2fM\t%.3f\t%s\t%s\n", r.Name, r.Family, r.Norm, r.Attn, float64(r.Params)/1e6, r.GFLOPs, r.Per, r.Summary)
	}
	return w.Flush()
}
