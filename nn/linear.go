package nn

import "github.com/slabml/slab/tensor"

// Linear is y = x W^T + b with W [Out, In] in PyTorch's layout.
type Linear struct {
	Weight, Bias *Param // Bias is nil when the layer has no bias
	In, Out      int
}

// NewLinear returns a zero Linear owning name.weight [out,in] and, if bias, name.bias [out].
func NewLinear(name string, in, out int, bias bool) *Linear {
	l := &Linear{Weight: NewParam(name+".weight", false, out, in), In: in, Out: out}
	if bias {
		l.Bias = NewParam(name+".bias", true, out)
	}
	return l
}

// Forward maps [..., In] to [..., Out].
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Backward accumulates dW, db and returns dx.
func (l *Linear) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// Params returns weight and bias (if any).
func (l *Linear) Params() []*Param {
	if l.Bias == nil {
		return []*Param{l.Weight}
	}
	return []*Param{l.Weight, l.Bias}
}

// Buffers is empty.
func (l *Linear) Buffers() []*Buffer { return nil }
