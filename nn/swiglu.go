package nn

import (
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// SwiGLU is LLaMA's MLP: down(silu(gate(x)) * up(x)), no biases
// (name.gate_proj, name.up_proj, name.down_proj). A fold may later give
// gate and up a bias; the layer does not care.
type SwiGLU struct {
	Gate, Up, Down *Linear
	Dim, Hidden    int
	g, u           *tensor.Tensor // gate and up outputs kept for backward
	h, dg, du      *tensor.Tensor
	dx             *tensor.Tensor
	siluWork       func(lo, hi int) // siluRange, bound once
}

// NewSwiGLU returns a zero SwiGLU MLP.
func NewSwiGLU(name string, dim, hidden int) *SwiGLU {
	return &SwiGLU{
		Gate: NewLinear(name+".gate_proj", dim, hidden, false),
		Up:   NewLinear(name+".up_proj", dim, hidden, false),
		Down: NewLinear(name+".down_proj", hidden, dim, false),
		Dim:  dim, Hidden: hidden,
	}
}

// silu uses the kernels package expf (about 2 ulp) rather than math.Exp:
// the float64 round trip was a tenth of a training step.
func silu(x float32) float32 { return x / (1 + kernels.Expf(-x)) }

// Forward maps [..., Dim] to [..., Dim].
func (m *SwiGLU) Forward(x *tensor.Tensor) *tensor.Tensor {
	var gu [2]*tensor.Tensor
	SharedForward(x, gu[:], m.Gate, m.Up)
	g, u := gu[0], gu[1]
	m.g, m.u = g, u
	h := tensor.Ensure(&m.h, g.Shape...)
	if len(h.Data) < 2*swigluGrain {
		// Decoding one token: split in two through a method value bound
		// once (no closure per token, so the step stays allocation-free).
		// Serial, it was ~3 % of a llama_350m int8 token's CPU with the
		// other thread idle (2026-12-07).
		if m.siluWork == nil {
			m.siluWork = m.siluRange
		}
		kernels.ParallelFor(len(h.Data), 1024, m.siluWork)
	} else {
		gd, ud, hd := g.Data, u.Data, h.Data
		kernels.ParallelFor(len(hd), swigluGrain, func(lo, hi int) { siluMul(hd[lo:hi], gd[lo:hi], ud[lo:hi]) })
	}
	return m.Down.Forward(h)
}

const swigluGrain = 4096

// siluRange is h = silu(g) * u over [lo, hi) of the last Forward's
// tensors (the decode path's ParallelFor body).
func (m *SwiGLU) siluRange(lo, hi int) { siluMul(m.h.Data[lo:hi], m.g.Data[lo:hi], m.u.Data[lo:hi]) }

func siluMul(h, g, u []float32) {
	g, u = g[:len(h)], u[:len(h)]
	for i := range h {
		h[i] = silu(g[i]) * u[i]
	}
}

// Backward returns dx and accumulates the three weight gradients.
func (m *SwiGLU) Backward(dy *tensor.Tensor) *tensor.Tensor {
	dh := m.Down.Backward(dy)
	dg := tensor.Ensure(&m.dg, dh.Shape...)
	du := tensor.Ensure(&m.du, dh.Shape...)
	gd, ud, dhd := m.g.Data, m.u.Data, dh.Data
	kernels.ParallelFor(len(dhd), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := gd[i]
			sg := 1 / (1 + kernels.Expf(-g))
			du.Data[i] = dhd[i] * g * sg
			// d silu(g)/dg = s(g) (1 + g (1 - s(g)))
			dg.Data[i] = dhd[i] * ud[i] * sg * (1 + g*(1-sg))
		}
	})
	dx1 := m.Gate.Backward(dg)
	dx := tensor.Ensure(&m.dx, dx1.Shape...)
	kernels.Add(dx.Data, dx1.Data, m.Up.Backward(du).Data)
	return dx
}

// Params returns gate, up, down parameters.
func (m *SwiGLU) Params() []*Param {
	return append(append(m.Gate.Params(), m.Up.Params()...), m.Down.Params()...)
}

// Buffers is empty.
func (m *SwiGLU) Buffers() []*Buffer { return nil }
