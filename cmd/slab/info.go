package main

import (
	"errors"
	"fmt"

	"github.com/slabml/slab/models"
)

func init() {
	register(&command{Name: "info", Summary: "parameters and FLOPs of a model, by layer type", Run: runCmd(cmdInfo)})
	register(&command{Name: "models", Summary: "list every registered model of every family, vision and language", Run: runCmd(cmdModels)})
}

// infoResult is the JSON of slab info; modelEntry one row of slab models.
type (
	infoResult = models.Info
	modelEntry = models.Row
)

func cmdInfo(args []string) error {
	fs := newFlags("info", "info MODEL [--norm N] [--attn A] [--size S] [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	norm := fs.String("norm", "", "override the norm (vision: layernorm|repbn|prepbn|batchnorm|none; LM: rmsnorm|layernorm|prepbn|none)")
	attn := fs.String("attn", "", "override the attention: softmax|sla")
	size := fs.Int("size", 0, "override the input side of a vision model (0 = the model's)")
	flagRange(fs, "[0, 4096]", "size")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want exactly one MODEL argument (see slab models), got %d", len(pos))
	}
	opts := map[string]string{"norm": *norm, "attn": *attn}
	if *size > 0 {
		opts["size"] = fmt.Sprint(*size)
	}
	r, err := models.Describe(pos[0], opts)
	if ie := (*models.InputError)(nil); errors.As(err, &ie) && ie.Input == "name" {
		return fmt.Errorf("MODEL %s: %v", pos[0], ie.Err) // an argument here, not a --model flag
	} else if err != nil {
		return modelErr(err, "")
	}
	if *jsonOut {
		return emitJSON(r)
	}
	return r.WriteTable(stdout)
}

func cmdModels(args []string) error {
	fs := newFlags("models", "models [--json]")
	jsonOut := fs.Bool("json", false, "print one JSON object on stdout")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *jsonOut {
		return emitJSON(models.Catalog())
	}
	return models.WriteCatalog(stdout)
}
