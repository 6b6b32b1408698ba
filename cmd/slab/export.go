package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/slabml/slab"
	"github.com/slabml/slab/models"
)

func init() {
	register(&command{Name: "export", Summary: "write a slab checkpoint as its family's official PyTorch state dict (.pth or .safetensors)", Run: runCmd(cmdExport)})
}

// exportResult is the JSON of slab export.
type exportResult struct {
	Weights string   `json:"weights"`
	Out     string   `json:"out"`
	Model   string   `json:"model"`
	Family  string   `json:"family"`
	Norm    string   `json:"norm"`
	Format  string   `json:"format"`
	Wrap    string   `json:"wrap"`
	Tensors int      `json:"tensors"`
	Params  int64    `json:"params"`
	Warn    []string `json:"warnings"`
}

func cmdExport(args []string) error {
	fs := newFlags("export", "export --weights FILE --out OUT.pth|OUT.safetensors [--wrap model] [--force] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	weights := fs.String("weights", "", "slab checkpoint (weights or training file, any family; not folded)")
	out := fs.String("out", "", "output: .pth/.pt/.bin (torch.save) or .safetensors")
	wrap := fs.String("wrap", "", "nest a .pth state dict under this key, as training checkpoints do (model: {\"model\": state_dict}); default bare")
	force := fs.Bool("force", false, "overwrite OUT if it exists")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (give the checkpoint with --weights)", pos[0])
	}
	if *weights == "" {
		return flagErr("weights", "is required")
	}
	if *out == "" {
		return flagErr("out", "is required")
	}
	format := ""
	switch strings.ToLower(filepath.Ext(*out)) {
	case ".pth", ".pt", ".bin":
		format = "pth"
	case ".safetensors":
		format = "safetensors"
		if *wrap != "" {
			return flagErr("wrap", "applies to .pth output only (a safetensors state dict is bare)")
		}
	default:
		return flagErr("out", "%s: want a .pth, .pt, .bin or .safetensors file", *out)
	}
	if err := checkOutput(*out, "--out", *force); err != nil {
		return err
	}
	m, _, warns, err := models.Load(*weights)
	if err != nil {
		return flagErr("weights", "%v", err)
	}
	if err := slab.Export(m, *out, slab.ExportOptions{Wrap: *wrap}); err != nil {
		if errors.Is(err, slab.ErrFolded) {
			return flagErr("weights", "%s holds %s folded: %v", *weights, nameOf(m), slab.ErrFolded)
		}
		return err
	}
	sd, _ := slab.OfficialState(m)
	res := exportResult{Weights: *weights, Out: *out, Model: nameOf(m), Family: m.Family(), Norm: normOf(m), Format: format,
		Wrap: *wrap, Tensors: len(sd), Params: models.NumParams(m), Warn: warns}
	if res.Warn == nil {
		res.Warn = []string{}
	}
	for _, w := range warns {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if *jsonOut {
		return emitJSON(res)
	}
	fmt.Fprintf(stdout, "exported %s (%s, %s, %d params) to %s: %d tensors, official %s layout\n", *weights, res.Model, res.Norm, res.Params, *out, res.Tensors, m.Family())
	return nil
}
