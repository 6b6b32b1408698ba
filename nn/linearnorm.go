package nn

import (
	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// LinearNorm is PRepBN's progressive schedule (SLAB.md 1.2, LLaMA variant
// 6.1): in training it returns lambda*Norm1(x) + (1-lambda)*Norm2(x) with
// lambda decaying linearly from 1 to 0 over TotalStep counted calls; in
// evaluation it is Norm2 (RepBN with running statistics) alone.
//
// Schedule, per training call, exactly as the official module:
//
//	if Warm > 0: if NumStep%Every == 0 { Warm-- }; return Norm1(x)
//	lambda = R0*Iter/TotalStep            (before the decrement)
//	if Iter > 0 && NumStep%Every == 0 { Iter-- }
//	out = lambda*Norm1(x) + (1-lambda)*Norm2(x)
//	NumStep = (NumStep+1) % Every
//
// Every is 1 for vision models (NumStep stays 0, no num_step buffer) and 16
// for LLaMA. During warm-up Norm2 is not run, so its BN statistics do not
// move; after it both branches run whatever lambda is (the BN statistics
// update even at lambda = 1), except that once lambda is exactly 0 Norm1 is
// skipped: it would contribute 0*Norm1(x) and receive a zero gradient, so
// skipping changes no output, gradient or statistic and saves the LayerNorm
// for the rest of training. TotalStep <= 0 gives lambda = 0.
type LinearNorm struct {
	Norm1                          Norm
	Norm2                          *RepBN
	Warm, Iter, TotalStep, NumStep int64
	R0                             float64
	Every                          int64

	name   string
	mode   lnMode  // what the last Forward computed
	lambda float32 // lambda of the last Forward (mix mode)
	y      *tensor.Tensor
	dy     *tensor.Tensor // lambda*dy, then the returned dx
	dy2    *tensor.Tensor // (1-lambda)*dy
}

type lnMode int

const (
	lnNone  lnMode = iota
	lnNorm1        // warm-up: Norm1 only
	lnMix          // lambda*Norm1 + (1-lambda)*Norm2
	lnNorm2        // eval, or lambda == 0: Norm2 only
)

// NewLinearNorm returns the vision schedule (Every = 1, no num_step
// buffer): buffers name.warm, name.iter, name.total_step with iter =
// total_step = step. norm1 and norm2 carry their own names (name.norm1,
// name.norm2 in the official models).
func NewLinearNorm(name string, norm1 Norm, norm2 *RepBN, warm, step int64) *LinearNorm {
	return &LinearNorm{Norm1: norm1, Norm2: norm2, Warm: warm, Iter: step, TotalStep: step, R0: 1, Every: 1, name: name}
}

// NewLinearNormLLaMA returns the LLaMA schedule (Every = 16, extra buffer
// name.num_step starting at 0).
func NewLinearNormLLaMA(name string, norm1 Norm, norm2 *RepBN, warm, step int64) *LinearNorm {
	return &LinearNorm{Norm1: norm1, Norm2: norm2, Warm: warm, Iter: step, TotalStep: step, R0: 1, Every: 16, name: name}
}

// Lambda is the weight of Norm1 the next training call will use: 1 during
// warm-up, R0*Iter/TotalStep after.
func (l *LinearNorm) Lambda() float64 {
	if l.Warm > 0 {
		return 1
	}
	if l.TotalStep <= 0 {
		return 0
	}
	return l.R0 * float64(l.Iter) / float64(l.TotalStep)
}

// Forward mixes the two norms in training (advancing the schedule) and is
// Norm2 alone in eval.
func (l *LinearNorm) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if !train {
		l.mode = lnNorm2
		return l.Norm2.Forward(x, false)
	}
	every := max(l.Every, 1)
	tick := l.NumStep%every == 0
	l.NumStep = (l.NumStep + 1) % every
	if l.Warm > 0 {
		if tick {
			l.Warm--
		}
		l.mode = lnNorm1
		return l.Norm1.Forward(x, true)
	}
	lambda := l.Lambda()
	if l.Iter > 0 && tick {
		l.Iter--
	}
	l.lambda = float32(lambda)
	if l.lambda == 0 {
		l.mode = lnNorm2
		return l.Norm2.Forward(x, true)
	}
	l.mode = lnMix
	y1 := l.Norm1.Forward(x, true)
	y2 := l.Norm2.Forward(x, true)
	y := tensor.Ensure(&l.y, x.Shape...)
	kernels.Axpby(y.Data, l.lambda, y1.Data, 1-l.lambda, y2.Data)
	return y
}

// Backward differentiates the last Forward: in mix mode each branch
// receives its lambda-weighted share of dy (so its parameter gradients are
// weighted too) and dx is the sum of both branch gradients.
func (l *LinearNorm) Backward(dy *tensor.Tensor) *tensor.Tensor {
	switch l.mode {
	case lnNorm1:
		return l.Norm1.Backward(dy)
	case lnNorm2:
		return l.Norm2.Backward(dy)
	case lnMix:
	default:
		panic("nn.LinearNorm " + l.name + ": Backward without Forward")
	}
	// Two scaled copies of dy: a norm's Backward may return its input
	// (Identity does), so dx1 must survive the second scaling.
	s1 := tensor.Ensure(&l.dy, dy.Shape...)
	kernels.Scale(s1.Data, l.lambda, dy.Data)
	dx1 := l.Norm1.Backward(s1)
	s2 := tensor.Ensure(&l.dy2, dy.Shape...)
	kernels.Scale(s2.Data, 1-l.lambda, dy.Data)
	dx2 := l.Norm2.Backward(s2)
	// s1 is consumed (or is dx1 itself): the sum goes there.
	kernels.Add(s1.Data, dx1.Data, dx2.Data)
	return s1
}

// Params returns norm1's then norm2's parameters.
func (l *LinearNorm) Params() []*Param { return append(l.Norm1.Params(), l.Norm2.Params()...) }

// Buffers returns the schedule counters (name.num_step first for LLaMA,
// then name.warm, name.iter, name.total_step, all int64) followed by
// norm1's and norm2's buffers.
func (l *LinearNorm) Buffers() []*Buffer {
	var bs []*Buffer
	if l.Every > 1 {
		bs = append(bs, &Buffer{Name: l.name + ".num_step", I: &l.NumStep})
	}
	bs = append(bs, &Buffer{Name: l.name + ".warm", I: &l.Warm}, &Buffer{Name: l.name + ".iter", I: &l.Iter},
		&Buffer{Name: l.name + ".total_step", I: &l.TotalStep})
	bs = append(bs, l.Norm1.Buffers()...)
	return append(bs, l.Norm2.Buffers()...)
}
