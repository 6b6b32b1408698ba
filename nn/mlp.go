package nn

import (
	"fmt"
	"sync/atomic"

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

	// The blocked evaluation pass (forwardBlocks).
	bx, bres, by []float32
	bh           []float32 // per-thread hidden rows
	bRows, bNB   int
	bNext        atomic.Int64
	bFn          func(lo, hi int)
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
	if x.Rows() >= mlpBlockMin && m.FC2.Packed() && m.FC1.quant() == nil && m.FC2.quant() == nil {
		return m.forwardBlocks(x, res)
	}
	m.shp = append(m.shp[:0], x.Shape...)
	m.shp[len(m.shp)-1] = m.FC1.Out
	h := tensor.Ensure(&m.inferH, m.shp...)
	m.FC1.gemm(x.Rows(), x.Data, h.Data, kernels.Epilogue{Bias: biasData(m.FC1), Act: kernels.ActGELU})
	m.fusedAct = true
	return m.FC2.ForwardAdd(h, res)
}

// mlpBlockRows is the row block of the blocked evaluation MLP: eight
// 12-row GEMM panels, whose hidden rows (96 x 4C floats) stay in the
// core's L2 between fc1 and fc2.
const mlpBlockRows = 96

// mlpBlockMin is the token count from which ForwardAdd runs by row
// blocks: below it the hidden activation fits in the L2s anyway.
const mlpBlockMin = 4 * mlpBlockRows

// forwardBlocks is ForwardAdd's evaluation pass for many rows: each task
// takes a block of rows through fc1 (bias and GELU in its epilogue) and
// fc2 (bias and residual) while the block's hidden rows are in its core's
// L2, so the hidden activation (6.4 MB in SLAB-PVT-T's stage 1) never
// goes out to memory and back. Threads claim blocks as they finish. The
// blocks' GEMMs take the whole product's k slices (GemmPackedRows), so the
// bits are those of the unblocked GEMMs, whatever the thread count.
func (m *MLP) forwardBlocks(x, res *tensor.Tensor) *tensor.Tensor {
	if m.bFn == nil {
		m.bFn = m.blockTask
	}
	rows, hid := x.Rows(), m.FC1.Out
	m.yShape = append(m.yShape[:0], x.Shape...)
	m.yShape[len(m.yShape)-1] = m.FC2.Out
	y := tensor.Ensure(&m.iy, m.yShape...)
	if len(res.Data) != len(y.Data) {
		panic(fmt.Sprintf("nn.MLP %s: residual %v for output %v", m.FC2.Weight.Name, res.Shape, y.Shape))
	}
	t := kernels.Threads()
	if n := t * 2 * mlpBlockRows * hid; cap(m.bh) < n {
		m.bh = make([]float32, n)
	}
	m.bx, m.bres, m.by, m.bRows = x.Data, res.Data, y.Data, rows
	m.bNB = rows / mlpBlockRows // the last block takes the remainder
	m.bNext.Store(0)
	m.FC1.Weight.lin.get(m.FC1.Weight, m.FC1.In, hid) // pack outside the tasks
	m.FC2.Weight.lin.get(m.FC2.Weight, hid, m.FC2.Out)
	kernels.ParallelFor(t, 1, m.bFn)
	m.bx, m.bres, m.by = nil, nil, nil
	m.fusedAct = true
	return y
}

// blockTask runs thread slots [lo, hi), each claiming row blocks until
// none are left, in its own hidden buffer.
func (m *MLP) blockTask(lo, hi int) {
	in, hid, out := m.FC1.In, m.FC1.Out, m.FC2.Out
	pb1 := &m.FC1.Weight.lin.pb
	pb2 := &m.FC2.Weight.lin.pb
	ep1 := kernels.Epilogue{Bias: biasData(m.FC1), Act: kernels.ActGELU}
	for slot := lo; slot < hi; slot++ {
		h := m.bh[slot*2*mlpBlockRows*hid : (slot+1)*2*mlpBlockRows*hid]
		for {
			blk := int(m.bNext.Add(1) - 1)
			if blk >= m.bNB {
				break
			}
			r0, r1 := blk*mlpBlockRows, (blk+1)*mlpBlockRows
			if blk == m.bNB-1 {
				r1 = m.bRows
			}
			n := r1 - r0
			kernels.GemmPackedRows(m.bRows, n, m.bx[r0*in:], in, pb1, h, hid, ep1)
			kernels.GemmPackedRows(m.bRows, n, h, hid, pb2, m.by[r0*out:], out,
				kernels.Epilogue{Bias: biasData(m.FC2), Residual: m.bres[r0*out:]})
		}
	}
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
