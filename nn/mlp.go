package nn

import "github.com/slabml/slab/tensor"

// MLP is fc1 -> GELU -> fc2.
type MLP struct {
	FC1, FC2 *Linear
}

// NewMLP returns an MLP owning name.fc1 and name.fc2.
func NewMLP(name string, dim, hidden int) *MLP {
	return &MLP{FC1: NewLinear(name+".fc1", dim, hidden, true), FC2: NewLinear(name+".fc2", hidden, dim, true)}
}

// Forward maps [..., dim] to [..., dim].
func (m *MLP) Forward(x *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Backward returns dx.
func (m *MLP) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params returns fc1's and fc2's parameters.
func (m *MLP) Params() []*Param { return append(m.FC1.Params(), m.FC2.Params()...) }

// Buffers is empty.
func (m *MLP) Buffers() []*Buffer { return nil }
