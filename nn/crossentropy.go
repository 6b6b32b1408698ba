package nn

import "github.com/slabml/slab/tensor"

// CrossEntropy is the label-smoothed cross-entropy of PyTorch.
type CrossEntropy struct {
	Smoothing float32
}

// Forward returns the mean loss over rows.
func (c *CrossEntropy) Forward(logits *tensor.Tensor, labels []int) float64 { panic("not implemented") }

// Backward returns d(mean loss)/dlogits.
func (c *CrossEntropy) Backward() *tensor.Tensor { panic("not implemented") }
