package models

import (
	"fmt"

	"github.com/slabml/slab/checkpoint"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// FeatureMap is one stage output of a multi-scale backbone: [B, C, H/Stride,
// W/Stride] in the channel-first layout a detection neck reads.
type FeatureMap struct {
	Stride int
	T      *tensor.Tensor
}

// FeatureModel is a classifier whose backbone also yields multi-scale
// feature maps (Swin's four stages at strides 4/8/16/32). The CLI's `slab
// run --features` finds it through this interface, never through a family.
type FeatureModel interface {
	Classifier
	// CheckFeatureInput reports whether FeatureMaps takes images of
	// c x h x w, with an error that names the sizes it takes.
	CheckFeatureInput(c, h, w int) error
	// FeatureMaps runs an eval-mode forward of x [B,C,H,W] and returns each
	// stage's output, owned by the model until its next forward.
	FeatureMaps(x *tensor.Tensor) ([]FeatureMap, error)
}

// FeaturesOfFile runs m.FeatureMaps over the images of a safetensors file
// (the tensor chosen as LogitsOfFile chooses it), batch images at a time,
// and returns the maps of all images with the tensor's name. Errors about
// the file are *InputError values for "input", about the choice of tensor
// for "tensor", about the batch for "batch".
func FeaturesOfFile(m FeatureModel, path, name string, batch int) ([]FeatureMap, string, error) {
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
	if len(x.Shape) == 3 {
		x = x.View(append([]int{1}, x.Shape...)...)
	}
	if len(x.Shape) != 4 || x.Shape[0] < 1 {
		return nil, "", inputErr("input", "%s: tensor %q has shape %v; features take images [B,C,H,W]", path, key, x.Shape)
	}
	if err := m.CheckFeatureInput(x.Shape[1], x.Shape[2], x.Shape[3]); err != nil {
		return nil, "", inputErr("input", "%s: tensor %q: %v", path, key, err)
	}
	if err := nn.CheckFinite(fmt.Sprintf("%s: tensor %q", path, key), x); err != nil {
		return nil, "", inputErr("input", "%v", err)
	}
	if batch < 1 {
		return nil, "", inputErr("batch", "batch %d, want >= 1", batch)
	}
	b := x.Shape[0]
	per := x.Size() / b
	var out []FeatureMap
	for i := 0; i < b; i += batch {
		n := min(batch, b-i)
		chunk, err := tensor.FromData(x.Data[i*per:(i+n)*per], n, x.Shape[1], x.Shape[2], x.Shape[3])
		if err != nil {
			return nil, "", err
		}
		fs, err := m.FeatureMaps(chunk)
		if err != nil {
			return nil, "", err
		}
		if out == nil {
			for _, f := range fs {
				shape := append([]int{b}, f.T.Shape[1:]...)
				out = append(out, FeatureMap{Stride: f.Stride, T: tensor.New(shape...)})
			}
		}
		for k, f := range fs {
			sz := f.T.Size() / n
			copy(out[k].T.Data[i*sz:(i+n)*sz], f.T.Data)
		}
	}
	return out, key, nil
}
