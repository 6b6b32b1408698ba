package slab

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/slabml/slab/models"
)

// ExportResult is what ExportFile wrote (slab export's JSON).
type ExportResult struct {
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

// ExportFile loads a slab checkpoint and writes it to out as its family's
// official state dict, in the format out's extension names (.pth, .pt,
// .bin: torch.save; .safetensors). Errors about an input are
// *models.InputError values for "weights", "out" or "wrap". ready, when
// not nil, runs once the arguments are checked and before anything is read
// or written (a program refuses to overwrite out there).
func ExportFile(weights, out, wrap string, ready func() error) (*ExportResult, error) {
	format := ""
	switch strings.ToLower(filepath.Ext(out)) {
	case ".pth", ".pt", ".bin":
		format = "pth"
	case ".safetensors":
		format = "safetensors"
		if wrap != "" {
			return nil, &models.InputError{Input: "wrap", Err: errors.New("applies to .pth output only (a safetensors state dict is bare)")}
		}
	default:
		return nil, &models.InputError{Input: "out", Err: fmt.Errorf("%s: want a .pth, .pt, .bin or .safetensors file", out)}
	}
	if ready != nil {
		if err := ready(); err != nil {
			return nil, err
		}
	}
	m, _, warns, err := models.Load(weights)
	if err != nil {
		return nil, &models.InputError{Input: "weights", Err: err}
	}
	name := models.ConfigName(m.Config())
	if err := Export(m, out, ExportOptions{Wrap: wrap}); err != nil {
		if errors.Is(err, ErrFolded) {
			return nil, &models.InputError{Input: "weights", Err: fmt.Errorf("%s holds %s folded: %v", weights, name, ErrFolded)}
		}
		return nil, err
	}
	sd, _ := OfficialState(m)
	res := &ExportResult{Weights: weights, Out: out, Model: name, Family: m.Family(), Norm: m.Config().NormSpec().Kind, Format: format,
		Wrap: wrap, Tensors: len(sd), Params: models.NumParams(m), Warn: warns}
	if res.Warn == nil {
		res.Warn = []string{}
	}
	return res, nil
}
