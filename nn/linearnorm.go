package nn

import (
	"fmt"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// LinearNorm is PRepBN's progressive schedule (docs/method.md 1.2, LLaMA variant
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
	fused  bool    // the last mix Forward ran the fused kernels
	y      *tensor.Tensor
	dy     *tensor.Tensor // lambda*dy, then the returned dx
	dy2    *tensor.Tensor // (1-lambda)*dy
	sums   *tensor.Tensor // fused backward's column sums [3, C]
	shp    []int
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

// Forward mixes the two norms in Train mode (advancing the schedule) and
// is Norm2 alone otherwise: with running statistics in Eval, with batch
// statistics and the schedule frozen in Recalibrate.
func (l *LinearNorm) Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor {
	if mode != Train {
		l.mode = lnNorm2
		return l.Norm2.Forward(x, mode)
	}
	every := max(l.Every, 1)
	tick := l.NumStep%every == 0
	l.NumStep = (l.NumStep + 1) % every
	if l.Warm > 0 {
		if tick {
			l.Warm--
		}
		l.mode = lnNorm1
		return l.Norm1.Forward(x, Train)
	}
	lambda := l.Lambda()
	if l.Iter > 0 && tick {
		l.Iter--
	}
	l.lambda = float32(lambda)
	if l.lambda == 0 {
		l.mode = lnNorm2
		return l.Norm2.Forward(x, Train)
	}
	l.mode = lnMix
	y := tensor.Ensure(&l.y, x.Shape...)
	if ln, ok := l.Norm1.(*LayerNorm); ok {
		// LayerNorm + RepBN (the vision PRepBN): both branches and the mix
		// in one output pass, bit for bit the three-pass result below.
		checkDim("LinearNorm", l.name, x, ln.Dim)
		l.fused = true
		mean, rstd := ln.keep(x)
		bn := l.Norm2.BN
		skip := l.Norm2.Alpha.W.Data[0]
		bn.prepare(x, true, skip)
		kernels.LayerNormMixForward(y.Data, mean.Data, rstd.Data, x.Data, ln.Weight.W.Data, ln.Bias.W.Data, x.Rows(), ln.Dim,
			ln.Eps, l.lambda, 1-l.lambda, skip, bn.vb.Data, bn.mean.Data, bn.Bias.W.Data)
		return y
	}
	l.fused = false
	y1 := l.Norm1.Forward(x, Train)
	y2 := l.Norm2.Forward(x, Train)
	kernels.Axpby(y.Data, l.lambda, y1.Data, 1-l.lambda, y2.Data)
	return y
}

// Backward differentiates the last Forward: in mix mode each branch
// receives its lambda-weighted share of dy (so its parameter gradients are
// weighted too) and dx is the sum of both branch gradients.
func (l *LinearNorm) Backward(dy *tensor.Tensor) *tensor.Tensor { return l.BackwardAdd(dy, nil) }

// BackwardAdd is Backward returning dx + res (res nil: dx). With
// LayerNorm + RepBN branches the mix mode takes two passes over memory: one
// column pass for every reduction of both branches
// (kernels.LayerNormBatchNormSums: the branches' shares of dy are lambda and
// 1-lambda times the same sums) and one row pass writing dx + res
// (kernels.LayerNormMixBackward).
func (l *LinearNorm) BackwardAdd(dy, res *tensor.Tensor) *tensor.Tensor {
	switch l.mode {
	case lnNorm1:
		return NormBackwardAdd(l.Norm1, dy, res, &l.dy2)
	case lnNorm2:
		return l.Norm2.BackwardAdd(dy, res)
	case lnMix:
	default:
		panic("nn.LinearNorm " + l.name + ": Backward without Forward")
	}
	if l.fused {
		return l.mixBackwardFused(dy, res)
	}
	if res != nil {
		return AddInto(&l.dy2, res, l.mixBackward(dy))
	}
	return l.mixBackward(dy)
}

// mixBackwardFused is the mix mode's backward for LayerNorm + RepBN.
func (l *LinearNorm) mixBackwardFused(dy, res *tensor.Tensor) *tensor.Tensor {
	ln, bn := l.Norm1.(*LayerNorm), l.Norm2.BN
	c := ln.Dim
	checkDim("LinearNorm", l.name, dy, c)
	if ln.xs == nil || len(ln.xs.Data) != len(dy.Data) {
		panic(fmt.Sprintf("nn.LinearNorm %s: Backward %v without a matching Forward", l.name, dy.Shape))
	}
	rows := dy.Rows()
	sums := ensureDims(&l.sums, &l.shp, 3, c).Data
	sdy, sdyc, sdyh := sums[:c], sums[c:2*c], sums[2*c:]
	kernels.LayerNormBatchNormSums(sdy, sdyc, sdyh, dy.Data, ln.xs.Data, bn.mean.Data, ln.mean.Data, ln.rstd.Data, rows, c)
	lam, oml := l.lambda, 1-l.lambda
	dw, db := ln.Weight.G.Data[:c], ln.Bias.G.Data[:c]
	for j := range dw {
		dw[j] += lam * sdyh[j]
		db[j] += lam * sdy[j]
	}
	l.Norm2.Alpha.G.Data[0] += float32(bn.gradCoeffs(sdy, sdyc, oml, rows))
	k1 := bn.va.Data[:c]
	for j := range k1 {
		k1[j] *= oml // the BatchNorm branch's dy is (1-lambda)*dy
	}
	var rd []float32
	if res != nil {
		checkSame("LinearNorm.Backward", dy, res)
		rd = res.Data
	}
	dx := tensor.Ensure(&l.dy, dy.Shape...)
	kernels.LayerNormMixBackward(dx.Data, dy.Data, ln.xs.Data, ln.mean.Data, ln.rstd.Data, ln.Weight.W.Data, lam,
		k1, bn.vb.Data, bn.mean.Data, bn.vd.Data, rd, rows, c)
	return dx
}

// mixBackward is the mix mode's backward for other branch pairs: each
// branch's own Backward on its share of dy.
func (l *LinearNorm) mixBackward(dy *tensor.Tensor) *tensor.Tensor {
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
