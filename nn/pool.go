package nn

import "github.com/slabml/slab/tensor"

// MeanTokens averages [B,N,C] over tokens to [B,C].
type MeanTokens struct{}

// Forward averages over the token axis.
func (m *MeanTokens) Forward(x *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Backward spreads dy evenly over the tokens.
func (m *MeanTokens) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }
