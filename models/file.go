package models

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
)

// Metadata keys of a slab checkpoint (a safetensors file holding every
// parameter and buffer under its official name).
const (
	// MetaFamily names the model family.
	MetaFamily = "family"
	// MetaConfig holds the family config as JSON.
	MetaConfig = "model_config"
	// MetaFormat says what else the file holds (FormatWeights, or a
	// training format with optimizer state).
	MetaFormat = "format"
	// FormatWeights marks a weights-only file.
	FormatWeights = "slab-weights/1"
	// OptimPrefix starts the names of optimizer state tensors, which a
	// model load skips.
	OptimPrefix = "optim."
	// metaLegacyLM is where checkpoints of the language-model commands
	// before the registry kept their config (no family recorded).
	metaLegacyLM = "lm_config"
)

// WeightsFile returns a checkpoint holding m's parameters and buffers, its
// family and its config, plus the given metadata. Linear weights held in
// bf16 or int8 only (nn.Quantize) are written in their dtype, which the
// metadata records (quantfile.go).
func WeightsFile(m Model, meta map[string]string) (*checkpoint.File, error) {
	js, err := json.Marshal(m.Config())
	if err != nil {
		return nil, fmt.Errorf("models: encoding the %s config: %v", m.Family(), err)
	}
	f := checkpoint.NewFile()
	state, qmeta := quantState(m)
	for k, e := range state {
		f.Tensors[k] = e
	}
	f.Metadata[MetaFormat] = FormatWeights
	for k, v := range meta {
		f.Metadata[k] = v
	}
	delete(f.Metadata, MetaDtype)
	delete(f.Metadata, MetaGroup)
	for k, v := range qmeta {
		f.Metadata[k] = v
	}
	f.Metadata[MetaFamily] = m.Family()
	f.Metadata[MetaConfig] = string(js)
	return f, nil
}

// ConfigOf returns the family and config a slab checkpoint records.
// Checkpoints written before the registry carry no family: a "model_config"
// alone is a vision transformer's, an "lm_config" a LLaMA decoder's.
func ConfigOf(f *checkpoint.File, path string) (*Family, Config, error) {
	fam, js := f.Metadata[MetaFamily], f.Metadata[MetaConfig]
	if fam == "" {
		switch {
		case f.Metadata[metaLegacyLM] != "":
			fam, js = "llama", f.Metadata[metaLegacyLM]
		case js != "":
			fam = "vit"
		default:
			return nil, nil, fmt.Errorf("%s: no model_config metadata: not a slab checkpoint (for an official PyTorch state dict use slab import)", path)
		}
	}
	family, err := FamilyOf(fam)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	c, err := DecodeConfig(family, []byte(js))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: model_config metadata: %v", path, err)
	}
	return family, c, nil
}

// FromFile rebuilds the model a slab checkpoint holds and loads its
// weights (optimizer state is skipped). The warnings are LoadState's.
func FromFile(f *checkpoint.File, path string) (Model, []string, error) {
	return fromFile(f, path, nil, false)
}

// fromFile is FromFile into m when it is not nil (built from f's config);
// release drops the values of f's entries as they are copied into m.
func fromFile(f *checkpoint.File, path string, m Model, release bool) (Model, []string, error) {
	if m == nil {
		family, c, err := ConfigOf(f, path)
		if err != nil {
			return nil, nil, err
		}
		if m, err = BuildBare(family, c); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	state := make(map[string]*checkpoint.Entry, len(f.Tensors))
	for k, e := range f.Tensors {
		if !strings.HasPrefix(k, OptimPrefix) {
			state[k] = e
		}
	}
	if d, err := FileDtype(f, path); err != nil {
		return nil, nil, err
	} else if d != kernels.F32 {
		if err := takeStored(m, state, d, path, release); err != nil {
			return nil, nil, err
		}
	}
	warns, err := loadState(m, state, release)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	return m, warns, nil
}

// Load reads a slab checkpoint and rebuilds its model; bf16 and int8
// weights of a quantized checkpoint are kept as stored (ReadRaw). The
// file's weights are released as they are copied into the model (the
// load peaks near the larger of the file and the model, not their sum):
// the returned File has its metadata and optimizer state, and the
// model's tensors as dtype and shape only.
func Load(path string) (Model, *checkpoint.File, []string, error) {
	pre, err := prebuildStored(path)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := checkpoint.ReadRaw(path)
	if err != nil {
		return nil, nil, nil, err
	}
	m, warns, err := fromFile(f, path, pre, true)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, f, warns, nil
}

// Clone builds an independent copy of m: same family, config and state.
func Clone(m Model) (Model, error) {
	family, err := FamilyOf(m.Family())
	if err != nil {
		return nil, err
	}
	c, err := CopyConfig(family, m.Config())
	if err != nil {
		return nil, err
	}
	d, err := BuildBare(family, c)
	if err != nil {
		return nil, err
	}
	stored := map[string]*kernels.QMatrix{}
	for _, p := range m.Params() {
		if q := nn.StoredWeight(p); q != nil {
			stored[p.Name] = q // read-only: shared by both models
		}
	}
	if len(stored) > 0 {
		_, src := nn.StoredDtype(m)
		if err := nn.UseQuantized(d, stored, src); err != nil {
			return nil, err
		}
	}
	if _, err := LoadState(d, StateDict(m)); err != nil {
		return nil, err
	}
	return d, nil
}
