package nn

import (
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// MLP is the transformer feed-forward block fc1 -> exact GELU -> fc2
// (Linear(C,4C), GELU, Linear(4C,C) in DeiT). Training keeps fc1's
// pre-activation (fc1's output buffer) for GELU's derivative; Infer fuses
// bias and GELU into fc1's GEMM epilogue when no backward will follow.
type MLP struct {
	FC1, FC2 *Linear

	act        GELU
	inferH, iy *tensor.Tensor
	yShape     []int
	shp        []int
	fusedAct   bool // the last forward fused GELU into fc1 (no Backward)
}

// NewMLP returns an MLP owning name.fc1 [hidden,dim] and name.fc2
// [dim,hidden], both with bias.
func NewMLP(name string, dim, hidden int) *MLP {
	return &MLP{FC1: NewLinear(name+".fc1", dim, hidden, true), FC2: NewLinear(name+".fc2", hidden, dim, true)}
}

// Forward maps [..., dim] to [..., dim], keeping what Backward needs.
// (Running Infer here in evaluation, GELU fused into fc1's epilogue, was
// measured 2-3 % slower on a whole Swin-T at 1 thread, 2026-12-06: the
// GELU over 32-column tiles costs more than one contiguous pass.)
func (m *MLP) Forward(x *tensor.Tensor) *tensor.Tensor {
	m.fusedAct = false
	h := m.FC1.Forward(x)
	a := m.act.Forward(h)
	return m.FC2.Forward(a)
}

// ForwardAdd is res + Forward(x), the residual added in fc2's epilogue.
// With prepacked weights (evaluation, nn.Prepack) GELU runs in fc1's
// epilogue too, and no Backward may follow; the bits are Forward's
// followed by kernels.Add either way. Two passes over the hidden
// activation and one over the output fewer: at 3,136 tokens they are
// memory traffic the two cores share.
func (m *MLP) ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor {
	m.fusedAct = false
	if !m.FC1.Packed() {
		return m.FC2.ForwardAdd(m.act.Forward(m.FC1.Forward(x)), res)
	}
	checkDim("MLP", m.FC1.Weight.Name, x, m.FC1.In)
	m.shp = append(m.shp[:0], x.Shape...)
	m.shp[len(m.shp)-1] = m.FC1.Out
	h := tensor.Ensure(&m.inferH, m.shp...)
	m.FC1.gemm(x.Rows(), x.Data, h.Data, kernels.Epilogue{Bias: biasData(m.FC1), Act: kernels.ActGELU})
	m.fusedAct = true
	return m.FC2.ForwardAdd(h, res)
}

// Backward returns dx and accumulates both Linears' gradients.
func (m *MLP) Backward(dy *tensor.Tensor) *tensor.Tensor {
	if m.fusedAct {
		panic("nn.MLP " + m.FC1.Weight.Name + ": Backward after an evaluation ForwardAdd (GELU fused, its input not kept)")
	}
	da := m.FC2.Backward(dy)
	dh := m.act.Backward(da)
	return m.FC1.Backward(dh)
}

// Infer is Forward for evaluation: GELU is fused into fc1's GEMM epilogue
// and nothing is kept for Backward (which must not follow).
func (m *MLP) Infer(x *tensor.Tensor) *tensor.Tensor {
	checkDim("MLP", m.FC1.Weight.Name, x, m.FC1.In)
	rows, hid, out := x.Rows(), m.FC1.Out, m.FC2.Out
	h := ensureDims(&m.inferH, &m.shp, rows, hid)
	m.FC1.gemm(rows, x.Data, h.Data, kernels.Epilogue{Bias: biasData(m.FC1), Act: kernels.ActGELU})
	m.yShape = append(m.yShape[:0], x.Shape...)
	m.yShape[len(m.yShape)-1] = out
	y := tensor.Ensure(&m.iy, m.yShape...)
	m.FC2.gemm(rows, h.Data, y.Data, kernels.Epilogue{Bias: biasData(m.FC2)})
	return y
}

func biasData(l *Linear) []float32 {
	if l.Bias == nil {
		return nil
	}
	return l.Bias.W.Data
}

// Params returns fc1's and fc2's parameters.
func (m *MLP) Params() []*Param { return append(m.FC1.Params(), m.FC2.Params()...) }

// Buffers is empty.
func (m *MLP) Buffers() []*Buffer { return nil }
