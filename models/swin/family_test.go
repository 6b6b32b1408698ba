package swin_test

import (
	"testing"

	"github.com/slabml/slab/models/internal/familytest"
	"github.com/slabml/slab/nn"
)

// TestGradients: Train-mode gradients of the whole Fashion-MNIST models
// (global SLA and focused attention on the 16x16 map, shifted window
// softmax with its mask and relative position bias, patch merging, the
// padding) against finite differences along each tensor's gradient, with
// LayerNorm and with BatchNorm-based RepBN (batch statistics).
func TestGradients(t *testing.T) {
	for _, name := range []string{"slab_swin_mini_32", "flatten_swin_mini_32", "swin_mini_32"} {
		for _, norm := range []string{nn.NormLayerNorm, nn.NormRepBN} {
			t.Run(name+"/"+norm, func(t *testing.T) {
				m := familytest.Build(t, name, norm, 3)
				familytest.GradCheck(t, m, familytest.Input(m, 1, 2), 3, 1e-2, 6e-2)
			})
		}
	}
}
