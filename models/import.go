package models

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/slabml/slab/checkpoint"
)

// InputError says which input of Open or Import is at fault, so that a
// program can point at its own option: Input is "name" (the model name),
// "key" (the state-dict key) or "path" (the weights file).
type InputError struct {
	Input string
	Err   error
}

func (e *InputError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(input string, format string, a ...any) error {
	return &InputError{Input: input, Err: fmt.Errorf(format, a...)}
}

// IsPTH tells a torch.save file (zip or legacy pickle) from safetensors by
// its first bytes.
func IsPTH(path string) (bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.IsDir() {
		return false, fmt.Errorf("%s is a directory, not a checkpoint file", path)
	}
	head := make([]byte, 4)
	if _, err := io.ReadFull(fh, head); err != nil {
		return false, fmt.Errorf("%s: too short for a checkpoint", path)
	}
	pth := bytes.Equal(head, []byte("PK\x03\x04")) || bytes.Equal(head[:3], []byte{0x80, 0x02, 0x8a})
	if ext := strings.ToLower(filepath.Ext(path)); !pth && (ext == ".pth" || ext == ".pt") {
		return false, fmt.Errorf("%s is not a PyTorch checkpoint: neither a zip archive (torch.save) nor a legacy pickle", path)
	}
	return pth, nil
}

// Import builds the named registry model and loads an official PyTorch
// checkpoint (or a safetensors state dict, as timm publishes) into it
// through LoadState. key names the checkpoint entry holding the state dict
// of a .pth ("": model, state_dict or model_ema, in that order). It
// returns the file read and LoadState's warnings.
func Import(path, name, key string) (Model, *checkpoint.File, []string, error) {
	e, cfg, err := Lookup(name)
	if err != nil {
		return nil, nil, nil, &InputError{Input: "name", Err: err}
	}
	pth, err := IsPTH(path)
	if err != nil {
		return nil, nil, nil, err
	}
	var f *checkpoint.File
	switch {
	case pth:
		f, err = checkpoint.ReadPTHKey(path, key)
		if _, e := checkpoint.ReadPTHKey(path, ""); err != nil && key != "" && e == nil {
			err = &InputError{Input: "key", Err: err} // the file reads; the key is wrong
		}
	case key != "":
		err = inputErr("key", "a state-dict key only applies to .pth checkpoints, and %s is safetensors", path)
	default:
		f, err = checkpoint.Read(path)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := BuildBare(e.Family, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	warnings, err := LoadState(m, f.Tensors)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s as model %s: %v", path, name, err)
	}
	return m, f, warnings, nil
}

// Open builds a model for inference from any weights file: a slab weights
// or training file (its model_config metadata names the architecture;
// name, if given, must agree), a safetensors state dict without config, or
// an official .pth (both need name). It returns LoadState's warnings.
func Open(path, name string) (Model, []string, error) {
	pth, err := IsPTH(path)
	if err != nil {
		return nil, nil, &InputError{Input: "path", Err: err}
	}
	if pth {
		if name == "" {
			return nil, nil, inputErr("name", "is required with an official .pth checkpoint (%s)", path)
		}
		m, _, warnings, err := Import(path, name, "")
		return m, warnings, err
	}
	f, err := checkpoint.Read(path)
	if err != nil {
		return nil, nil, &InputError{Input: "path", Err: err}
	}
	if _, ok := f.Metadata[MetaConfig]; ok || f.Metadata["lm_config"] != "" {
		_, cfg, err := ConfigOf(f, path)
		if err != nil {
			return nil, nil, &InputError{Input: "path", Err: err}
		}
		if held := ConfigName(cfg); name != "" && name != held {
			return nil, nil, inputErr("name", "%s but %s holds a %s", name, path, held)
		}
		m, warnings, err := FromFile(f, path)
		if err != nil {
			return nil, nil, &InputError{Input: "path", Err: err}
		}
		return m, warnings, nil
	}
	if name == "" {
		return nil, nil, inputErr("name", "is required: %s has no model_config metadata", path)
	}
	e, cfg, err := Lookup(name)
	if err != nil {
		return nil, nil, &InputError{Input: "name", Err: err}
	}
	m, err := BuildBare(e.Family, cfg)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := LoadState(m, f.Tensors)
	if err != nil {
		return nil, nil, fmt.Errorf("%s as model %s: %v", path, name, err)
	}
	return m, warnings, nil
}

// ConfigName is the registry name a config records ("model" if none).
func ConfigName(c Config) string {
	if n, ok := c.(interface{ ModelName() string }); ok && n.ModelName() != "" {
		return n.ModelName()
	}
	return "model"
}

// LoadStateFile loads an official state dict file (torch.save, or
// safetensors) into m through LoadState and returns its warnings.
func LoadStateFile(m Model, path string) ([]string, error) {
	pth, err := IsPTH(path)
	if err != nil {
		return nil, err
	}
	var f *checkpoint.File
	if pth {
		f, err = checkpoint.ReadPTH(path)
	} else {
		f, err = checkpoint.Read(path)
	}
	if err != nil {
		return nil, err
	}
	warnings, err := LoadState(m, f.Tensors)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return warnings, nil
}

// Resolve looks name up (Lookup), applies option overrides (option name
// -> value, in name order; empty values are skipped) and validates the
// config. An error is an *InputError naming the option at fault ("name"
// for the model name).
func Resolve(name string, opts map[string]string) (*Entry, Config, error) {
	e, c, err := Lookup(name)
	if err != nil {
		return nil, nil, &InputError{Input: "name", Err: err}
	}
	keys := make([]string, 0, len(opts))
	for k, v := range opts {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := c.Set(k, opts[k]); err != nil {
			return nil, nil, &InputError{Input: k, Err: err}
		}
	}
	if err := c.Validate(); err != nil {
		// Blame the first override the message mentions, else the model.
		for _, k := range keys {
			if strings.Contains(strings.ToLower(err.Error()), k) {
				return nil, nil, &InputError{Input: k, Err: err}
			}
		}
		return nil, nil, &InputError{Input: "name", Err: err}
	}
	return e, c, nil
}
