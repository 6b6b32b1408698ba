package main

import (
	"fmt"

	"github.com/slabml/slab"
)

func init() {
	register(&command{Name: "export", Summary: "write a slab checkpoint as its family's official PyTorch state dict (.pth or .safetensors)", Run: runCmd(cmdExport)})
}

// exportResult is the JSON of slab export.
type exportResult = slab.ExportResult

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
	res, err := slab.ExportFile(*weights, *out, *wrap, func() error { return checkOutput(*out, "--out", *force) })
	if err != nil {
		return modelErr(err, "")
	}
	warn(res.Warn)
	if *jsonOut {
		return emitJSON(res)
	}
	fmt.Fprintf(stdout, "exported %s (%s, %s, %d params) to %s: %d tensors, official %s layout\n", *weights, res.Model, res.Norm, res.Params, *out, res.Tensors, res.Family)
	return nil
}
