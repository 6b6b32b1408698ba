package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/slabml/slab/fuse"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

func init() {
	register(&command{Name: "import", Summary: "convert an official checkpoint (.pth, or a safetensors state dict) to slab weights", Run: runCmd(cmdImport)})
}

// importResult is the JSON of slab import.
type importResult = models.ConvertResult

func cmdImport(args []string) error {
	fs := newFlags("import", "import IN.pth OUT.safetensors [--model NAME] [--key KEY] [--fuse] [--force] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	model := fs.String("model", "", "registry name of the architecture (default: IN's base name, e.g. slab_deit_tiny.pth)")
	key := fs.String("key", "", "checkpoint key holding the state dict (default: model, state_dict or model_ema, in that order)")
	doFuse := fs.Bool("fuse", false, "fold every RepBN/BN into the following Linear before writing (deploy model)")
	force := fs.Bool("force", false, "overwrite OUT if it exists")
	threads := threadsFlag(fs, "threads (0 = all cores)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("want two arguments, IN.pth and OUT.safetensors; got %d", len(pos))
	}
	in, out := pos[0], pos[1]
	if err := setThreads(*threads); err != nil {
		return err
	}
	if err := checkOutput(out, "OUT", *force); err != nil {
		return err
	}
	var fold models.Fold
	if *doFuse {
		fold = func(m models.Model) (models.Model, float64, error) {
			d, err := fuse.Copy(m)
			if err != nil {
				return nil, 0, flagErr("fuse", "%v", err)
			}
			diff, _, err := fuse.Compare(m, d, 2, 1)
			return d, diff, err
		}
	}
	res, err := models.Convert(in, out, *model, *key, fold)
	if err != nil {
		return modelErr(err, "")
	}
	w := info(*jsonOut)
	warn(res.Warnings)
	if *jsonOut {
		return emitJSON(res)
	}
	fmt.Fprintf(w, "imported %s (%d tensors) as %s (%s, %d params) into %s", in, res.Tensors, res.Model, res.Norm, res.Params, out)
	if res.Fused {
		fmt.Fprintf(w, "; folded, eval logits moved by at most %.3g", res.MaxAbsDiff)
	}
	fmt.Fprintln(w)
	return nil
}

// checkOutput refuses to clobber an existing file unless force is set.
func checkOutput(path, what string, force bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%s %s exists; pass --force to overwrite it", what, path)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %v", what, err)
	}
	return nil
}

// modelErr names the flag behind a models.InputError (the model name,
// the state-dict key or the weights file).
func modelErr(err error, pathFlag string) error {
	var ie *models.InputError
	if !errors.As(err, &ie) || (ie.Input == "path" && pathFlag == "") {
		return err
	}
	flag := map[string]string{"name": "model", "path": pathFlag}[ie.Input]
	if flag == "" {
		flag = ie.Input // an option: the flag of the same name
	}
	return flagErr(flag, "%v", ie.Err)
}

// openWeights opens any weights file as a classifier for inference
// (models.Open: --model is needed for a .pth or a config-less state
// dict); fuseIt folds the norms afterwards.
func openWeights(path, model string, fuseIt bool) (models.Classifier, []string, error) {
	m, warnings, err := models.Open(path, model)
	if err != nil {
		return nil, nil, modelErr(err, "weights")
	}
	c, ok := m.(models.Classifier)
	if !ok {
		return nil, nil, flagErr("weights", "%s holds %s, a %s model, not an image classifier", path, nameOf(m), m.Family())
	}
	if fuseIt && normOf(c) != nn.NormNone {
		if c, err = foldCopy(c); err != nil {
			return nil, nil, flagErr("fuse", "%v", err)
		}
	}
	return c, warnings, nil
}
