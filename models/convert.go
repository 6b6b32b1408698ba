package models

import (
	"path/filepath"
	"strings"

	"github.com/slabml/slab/checkpoint"
)

// ConvertResult is what Convert did (slab import's JSON).
type ConvertResult struct {
	In         string   `json:"in"`
	Out        string   `json:"out"`
	Model      string   `json:"model"`
	Norm       string   `json:"norm"`
	Family     string   `json:"family"`
	Params     int64    `json:"params"`
	Tensors    int      `json:"tensors_read"`
	StateKey   string   `json:"state_dict_key,omitempty"`
	Warnings   []string `json:"warnings"`
	Fused      bool     `json:"fused"`
	MaxAbsDiff float64  `json:"max_abs_logit_diff,omitempty"`
}

// Fold returns a folded copy of m and the largest eval-logit change it
// makes; Convert takes one so that models needs no package fuse.
type Fold func(m Model) (Model, float64, error)

// Convert imports an official checkpoint in (Import; name "" = in's base
// name), optionally folds it, and writes its slab weights file to out.
// Errors about an input are *InputError values: "name", "key", "path", or
// "fuse" for a fold that failed.
func Convert(in, out, name, key string, fold Fold) (*ConvertResult, error) {
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
		if _, _, err := Lookup(name); err != nil {
			return nil, inputErr("name", "is required: %s is not a model name (known: %s)", name, strings.Join(Names(), ", "))
		}
	}
	m, file, warnings, err := Import(in, name, key)
	if err != nil {
		return nil, err
	}
	res := &ConvertResult{In: in, Out: out, Model: ConfigName(m.Config()), Family: m.Family(), Norm: m.Config().NormSpec().Kind,
		Params: NumParams(m), Tensors: len(file.Tensors), StateKey: file.Metadata["pth.state_dict_key"], Warnings: warnings}
	if res.Warnings == nil {
		res.Warnings = []string{}
	}
	if fold != nil {
		d, diff, err := fold(m)
		if err != nil {
			return nil, err
		}
		m, res.Fused, res.Norm, res.Params, res.MaxAbsDiff = d, true, d.Config().NormSpec().Kind, NumParams(d), diff
	}
	meta := map[string]string{"imported_from": filepath.Base(in)}
	for _, k := range []string{"epoch", "max_accuracy"} {
		if v, ok := file.Metadata[k]; ok {
			meta["pth."+k] = v
		}
	}
	wf, err := WeightsFile(m, meta)
	if err != nil {
		return nil, err
	}
	if err := checkpoint.Write(out, wf); err != nil {
		return nil, err
	}
	return res, nil
}
