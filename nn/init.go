package nn

import (
	"math/rand/v2"

	"github.com/slabml/slab/tensor"
)

// TruncNormal fills t with normal(0, std) values clipped to [-2, 2] (absolute, as timm).
func TruncNormal(t *tensor.Tensor, std float64, rng *rand.Rand) { panic("not implemented") }

// Uniform fills t with values uniform in [-bound, bound).
func Uniform(t *tensor.Tensor, bound float64, rng *rand.Rand) { panic("not implemented") }

// Fill sets every element of t to v.
func Fill(t *tensor.Tensor, v float32) {
	for i := range t.Data {
		t.Data[i] = v
	}
}
