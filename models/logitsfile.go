package models

import (
	"fmt"
	"sort"
	"strings"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// LogitsOfFile runs classifier m over the images of a safetensors file
// (Logits): the tensor named name, else "input", else the file's only
// tensor, shaped [B,C,H,W] or one image [C,H,W]. It returns the logits and
// the tensor's name. Errors about the file are *InputError values for
// "input", about the choice of tensor for "tensor".
func LogitsOfFile(m Classifier, path, name string, batch int) (*tensor.Tensor, string, error) {
	in, err := checkpoint.Read(path)
	if err != nil {
		return nil, "", inputErr("input", "%v", err)
	}
	key, err := pickInput(in, name)
	if err != nil {
		return nil, "", inputErr("tensor", "%s: %v", path, err)
	}
	x, err := in.Tensor(key)
	if err != nil {
		return nil, "", inputErr("input", "%v", err)
	}
	ch, h, w := m.InputShape()
	if len(x.Shape) == 3 {
		x = x.View(append([]int{1}, x.Shape...)...)
	}
	if len(x.Shape) != 4 || x.Shape[1] != ch || x.Shape[2] != h || x.Shape[3] != w {
		return nil, "", inputErr("input", "%s: tensor %q has shape %v; %s takes [B,%d,%d,%d]", path, key, x.Shape, ConfigName(m.Config()), ch, h, w)
	}
	if err := nn.CheckFinite(fmt.Sprintf("%s: tensor %q", path, key), x); err != nil {
		return nil, "", inputErr("input", "%v", err) // NaN in, NaN out: refuse rather than answer
	}
	if n := min(batch, x.Shape[0]); n > 0 {
		if err := CheckMemory(fmt.Sprintf("batch %d", n), m.Config(), n, false); err != nil {
			return nil, "", inputErr("batch", "%v", err)
		}
	}
	logits, err := Logits(m, x, batch)
	return logits, key, err
}

// pickInput chooses the input tensor: the named one, else "input", else the
// only tensor of the file.
func pickInput(f *checkpoint.File, name string) (string, error) {
	if name != "" {
		if _, ok := f.Tensors[name]; !ok {
			return "", fmt.Errorf("no tensor %q (has: %s)", name, strings.Join(f.Names(), ", "))
		}
		return name, nil
	}
	if _, ok := f.Tensors["input"]; ok {
		return "input", nil
	}
	names := f.Names()
	if len(names) == 1 {
		return names[0], nil
	}
	sort.Strings(names)
	return "", fmt.Errorf("holds %d tensors and none named \"input\"; choose one with --tensor (has: %s)", len(names), strings.Join(names, ", "))
}
