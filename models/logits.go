package models

import (
	"fmt"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Logits runs a classifier in evaluation mode over images x [B, C, H, W]
// in chunks of batch images and gathers the logits [B, classes] into a new
// tensor (the model's output buffer is reused between chunks).
func Logits(m Classifier, x *tensor.Tensor, batch int) (*tensor.Tensor, error) {
	c, h, w := m.InputShape()
	if len(x.Shape) != 4 || x.Shape[1] != c || x.Shape[2] != h || x.Shape[3] != w || batch < 1 {
		return nil, fmt.Errorf("%s takes inputs [B, %d, %d, %d] in batches >= 1, got %v and %d", ConfigName(m.Config()), c, h, w, x.Shape, batch)
	}
	b, classes := x.Shape[0], m.Classes()
	per := x.Size() / max(b, 1)
	logits := tensor.New(b, classes)
	for i := 0; i < b; i += batch {
		n := min(batch, b-i)
		chunk, err := tensor.FromData(x.Data[i*per:(i+n)*per], n, c, h, w)
		if err != nil {
			return nil, err
		}
		y, err := m.Forward(chunk, nn.Eval)
		if err != nil {
			return nil, err
		}
		copy(logits.Data[i*classes:(i+n)*classes], y.Data)
	}
	return logits, nil
}
