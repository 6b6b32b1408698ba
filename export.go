package slab

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/nn"
)

// ExportOptions say how Export writes a state dict.
type ExportOptions struct {
	// Wrap nests a .pth state dict under this key, as training checkpoints
	// do ({"model": state_dict} for DeiT/SLAB); "" writes the bare state
	// dict (what model.load_state_dict takes directly). Safetensors files
	// are always bare.
	Wrap string
}

// ErrFolded is returned (wrapped) when exporting a folded model: its norms
// are folded into the Linear layers, a layout no official model has.
var ErrFolded = errors.New("a folded model (norm \"none\") has no official PyTorch layout: the official code keeps its BatchNorms and does not fold them into the Linears; export the checkpoint from before `slab fuse` (or `slab import` without --fuse)")

// OfficialState returns m's parameters and buffers as the official PyTorch
// state dict of its family: the official names (models.StateDict), with a
// family's renamed keys (models.Alias) put back under their official
// names; floats F32, counters (iter, total_step, warm,
// num_batches_tracked) 0-d I64. The layout is the one m's norms have:
// PRepBN models give LinearNorm keys (norm1.*, norm2.alpha, norm2.bn.*,
// warm, iter, total_step, as slab_deit.py), RepBN models bare RepBN keys
// (alpha, bn.*, as DeiT-PRepBN), LayerNorm models timm's keys. Buffers a
// family recomputes instead of storing (models.Alias with an empty Ours,
// such as LLaMA's rotary inv_freq) are not written. A folded model is
// refused with ErrFolded.
func OfficialState(m models.Model) (map[string]*checkpoint.Entry, error) {
	if m.Config().NormSpec().Kind == nn.NormNone {
		return nil, ErrFolded
	}
	if err := nn.NeedFloat32(m); err != nil {
		return nil, fmt.Errorf("%v: the official layouts hold float32 weights; export the float32 checkpoint it was quantized from", err)
	}
	sd := models.StateDict(m)
	f, err := models.FamilyOf(m.Family())
	if err != nil {
		return nil, err
	}
	for _, a := range f.Aliases {
		if a.Ours == "" || a.Official == "" {
			continue
		}
		for k, e := range sd {
			if strings.Contains(k, a.Ours) {
				delete(sd, k)
				sd[strings.Replace(k, a.Ours, a.Official, 1)] = e
			}
		}
	}
	return sd, nil
}

// Export writes m as its family's official PyTorch state dict
// (OfficialState) to path: a torch.save file for .pth, .pt and .bin (load
// with torch.load), a safetensors state dict for .safetensors. The file is
// written atomically; an existing file is replaced.
func Export(m models.Model, path string, o ExportOptions) error {
	sd, err := OfficialState(m)
	if err != nil {
		return fmt.Errorf("slab: exporting to %s: %w", path, err)
	}
	f := checkpoint.NewFile()
	f.Tensors = sd
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".pth", ".pt", ".bin":
		return checkpoint.WritePTH(path, f, o.Wrap)
	case ".safetensors":
		if o.Wrap != "" {
			return fmt.Errorf("slab: exporting to %s: a safetensors file holds a bare state dict (no wrap %q)", path, o.Wrap)
		}
		f.Metadata["format"] = "pt" // what safetensors' torch helpers write
		return checkpoint.Write(path, f)
	default:
		return fmt.Errorf("slab: exporting to %s: unknown extension %q (want .pth, .pt, .bin or .safetensors)", path, ext)
	}
}

// Export writes the model as its family's official PyTorch state dict
// (see the package-level Export).
func (r *Model) Export(path string, o ExportOptions) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.folded {
		return fmt.Errorf("slab: exporting %s to %s: %w", r.path, path, ErrFolded)
	}
	return Export(r.m, path, o)
}
