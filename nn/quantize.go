package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// Low-precision inference. Quantize stores every Linear weight of a model
// as bf16 or int8 (kernels.QMatrix) next to its float32 Param, and
// Linear.Forward then reads the low-precision copy: single rows (decoding)
// through kernels.GemvQ, several rows through kernels.GemmQ. Training is
// float32 only: a Backward through a quantized Linear panics. The float32
// weights stay the model's parameters (checkpoints, folding); the
// low-precision copy is rebuilt when a weight's Version moves, like a
// packed weight (Prepack).

// quantState is a Linear weight's low-precision copy and what it was
// built from.
type quantState struct {
	dtype kernels.Dtype
	q     *kernels.QMatrix
	ver   uint64   // Param.Version() when quantized
	data  *float32 // &W.Data[0] when quantized
}

// Quantize makes every Linear among m's parameters compute with its
// weight stored as dtype (kernels.BF16 or kernels.Int8, the int8 group
// chosen by kernels.Int8Group); kernels.F32 returns them to float32. It
// returns the number of Linears quantized, or an error naming the first
// weight that cannot be stored so (nothing is changed then).
func Quantize(m Module, dtype kernels.Dtype) (int, error) {
	var lins []*Param
	for _, p := range m.Params() {
		if p.lin != nil && len(p.W.Data) > 0 {
			lins = append(lins, p)
		}
	}
	if dtype == kernels.F32 {
		for _, p := range lins {
			p.lin.qs = nil
		}
		return len(lins), nil
	}
	if dtype != kernels.BF16 && dtype != kernels.Int8 {
		return 0, fmt.Errorf("nn.Quantize: cannot store weights as %v", dtype)
	}
	qs := make([]*quantState, len(lins))
	for i, p := range lins {
		s := &quantState{dtype: dtype}
		if err := s.build(p); err != nil {
			return 0, err
		}
		qs[i] = s
	}
	for i, p := range lins {
		p.lin.qs = qs[i]
	}
	return len(lins), nil
}

// build quantizes w (a Linear weight [out, in]).
func (s *quantState) build(w *Param) error {
	if len(w.W.Shape) != 2 {
		return fmt.Errorf("nn.Quantize: %s has shape %v, want [out,in]", w.Name, w.W.Shape)
	}
	q, err := kernels.Quantize(s.dtype, w.W.Data, w.W.Shape[0], w.W.Shape[1])
	if err != nil {
		return fmt.Errorf("nn.Quantize: %s: %w", w.Name, err)
	}
	s.q, s.ver, s.data = q, w.Version(), &w.W.Data[0]
	return nil
}

// get returns the low-precision weight, rebuilt when W may have changed.
func (s *quantState) get(w *Param) *kernels.QMatrix {
	if s.ver != w.Version() || s.data != &w.W.Data[0] {
		if err := s.build(w); err != nil {
			panic(err.Error())
		}
	}
	return s.q
}

// Dtype reports how the Linear's weight is stored for Forward.
func (l *Linear) Dtype() kernels.Dtype {
	if s := l.quant(); s != nil {
		return s.dtype
	}
	return kernels.F32
}

// QWeight returns the low-precision weight Forward reads, or nil for a
// float32 Linear.
func (l *Linear) QWeight() *kernels.QMatrix {
	if s := l.quant(); s != nil {
		return s.get(l.Weight)
	}
	return nil
}

func (l *Linear) quant() *quantState {
	if l.Weight.lin == nil {
		return nil
	}
	return l.Weight.lin.qs
}

// forwardQ is Forward with the low-precision weight.
func (l *Linear) forwardQ(x *tensor.Tensor, s *quantState) *tensor.Tensor {
	y := l.output(x)
	var ep kernels.Epilogue
	if l.Bias != nil {
		ep.Bias = l.Bias.W.Data
	}
	kernels.GemmQ(x.Rows(), x.Data, l.In, s.get(l.Weight), y.Data, l.Out, ep)
	return y
}

// gemm sets y = epilogue(x W^T) for rows rows of x (row stride In; y's
// Out) through the weight as Forward reads it (low-precision when
// quantized): for fused inference paths that call the GEMM themselves.
func (l *Linear) gemm(rows int, x, y []float32, ep kernels.Epilogue) {
	if s := l.quant(); s != nil {
		kernels.GemmQ(rows, x, l.In, s.get(l.Weight), y, l.Out, ep)
		return
	}
	kernels.GemmEpilogue(false, true, rows, l.Out, l.In, x, l.In, l.Weight.W.Data, l.In, y, l.Out, ep)
}

// WeightBytes sums the bytes of the Linear weights of m as Forward reads
// them (low-precision copies where quantized, float32 elsewhere): the
// weight traffic of a decode step, apart from the embedding row.
func WeightBytes(m Module) int {
	n := 0
	for _, p := range m.Params() {
		if p.lin == nil {
			continue
		}
		if s := p.lin.qs; s != nil {
			n += s.get(p).Bytes()
		} else {
			n += 4 * len(p.W.Data)
		}
	}
	return n
}

// QuantSet is the low-precision state of a module's Linears as Quantize
// left it (one entry per Linear weight, in Params order; nil for float32).
// With GetQuant and SetQuant a benchmark switches one model between
// dtypes quantized once each, instead of holding a model per dtype.
type QuantSet []*quantState

// GetQuant returns m's current low-precision state.
func GetQuant(m Module) QuantSet {
	var s QuantSet
	for _, p := range m.Params() {
		if p.lin != nil {
			s = append(s, p.lin.qs)
		}
	}
	return s
}

// SetQuant restores a state GetQuant returned for the same module.
func SetQuant(m Module, s QuantSet) {
	i := 0
	for _, p := range m.Params() {
		if p.lin != nil && i < len(s) {
			p.lin.qs = s[i]
			i++
		}
	}
}

// QuantizedWeights returns the low-precision weight of every quantized
// Linear of m by parameter name (for saving a quantized checkpoint).
func QuantizedWeights(m Module) map[string]*kernels.QMatrix {
	qs := map[string]*kernels.QMatrix{}
	for _, p := range m.Params() {
		if p.lin != nil && p.lin.qs != nil {
			qs[p.Name] = p.lin.qs.get(p)
		}
	}
	return qs
}

// UseQuantized makes the Linears of m whose weight names are in qs compute
// with those low-precision weights, as loaded from a quantized checkpoint
// (the float32 weights should hold their dequantized values, so that the
// model's parameters and its Forward agree). It returns an error naming a
// weight that is not a Linear's or whose shape does not match.
func UseQuantized(m Module, qs map[string]*kernels.QMatrix) error {
	byName := map[string]*Param{}
	for _, p := range m.Params() {
		byName[p.Name] = p
	}
	for name, q := range qs {
		p := byName[name]
		if p == nil || p.lin == nil {
			return fmt.Errorf("nn.UseQuantized: %s is not the weight of a Linear", name)
		}
		if len(p.W.Shape) != 2 || p.W.Shape[0] != q.N || p.W.Shape[1] != q.K {
			return fmt.Errorf("nn.UseQuantized: %s is %v, quantized weight is [%d,%d]", name, p.W.Shape, q.N, q.K)
		}
	}
	for name, q := range qs {
		p := byName[name]
		p.lin.qs = &quantState{dtype: q.Dtype, q: q, ver: p.Version(), data: &p.W.Data[0]}
	}
	return nil
}
