package slab

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
)

// Import builds the registered model called name (see `slab models`; a
// name may carry option endings such as lm_small_prepbn) and loads an
// official PyTorch state dict into it: a torch.save file (.pth, .pt,
// .bin; nested under "model", "state_dict" or "model_ema" as training
// checkpoints do) or a safetensors state dict. It is `slab import`
// without the file in between; official language models carry no
// tokenizer, so Generate needs a slab checkpoint (TokenLogits works).
func Import(path, name string, opts ...Option) (*Model, error) {
	o, err := loadOptions(opts)
	if err != nil {
		return nil, err
	}
	e, cfg, err := models.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("slab: %w", err)
	}
	pth, err := isPTH(path)
	if err != nil {
		return nil, fmt.Errorf("slab: %w", err)
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
	m, err := models.BuildBare(e.Family, cfg)
	if err != nil {
		return nil, fmt.Errorf("slab: %s: %w", name, err)
	}
	warns, err := models.LoadState(m, f.Tensors)
	if err != nil {
		return nil, fmt.Errorf("slab: %s as %s: %w", path, name, err)
	}
	r := &Model{m: m, path: path, meta: map[string]string{}, warns: warns, opts: o, lenient: true}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	return r, nil
}

// isPTH tells a torch.save file (zip or legacy pickle) from safetensors by
// its first bytes.
func isPTH(path string) (bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	head := make([]byte, 4)
	if _, err := io.ReadFull(fh, head); err != nil {
		return false, fmt.Errorf("%s: too short for a checkpoint", path)
	}
	return bytes.Equal(head, []byte("PK\x03\x04")) || bytes.Equal(head[:3], []byte{0x80, 0x02, 0x8a}), nil
}
