package nn

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/tensor"
)

// BatchNorm is PyTorch's BatchNorm1d over the channel axis of [..., C]
// tokens: per channel, statistics over all rows (B*N tokens; docs/method.md 1.1).
//
// Training normalises with the biased batch variance and updates
// running_mean <- (1-m)*running_mean + m*mean and running_var <- (1-m)*
// running_var + m*var*M/(M-1) (M rows; with M = 1 the unbiased correction
// is skipped, where PyTorch refuses the batch), and counts
// num_batches_tracked. Evaluation uses the running statistics.
//
// The forward pass is computed as y = a*x + g*(x - mean) + beta with g =
// gamma/std and a an extra scalar skip weight: 0 here, RepBN's alpha for
// RepBN, which is BatchNorm plus alpha*x and so shares this code. Both
// directions are a per-channel reduction followed by one per-channel affine
// pass (kernels.ColMeanVar / ColSumsDot, then AffineCols2), subtracting the
// mean before scaling so that large channel means cost no precision.
type BatchNorm struct {
	Weight, Bias            *Param
	RunningMean, RunningVar *tensor.Tensor
	NumBatchesTracked       int64
	Eps, Momentum           float32
	// NoCopy keeps a reference to the training input instead of a copy (as
	// LayerNorm.NoCopy): the caller leaves x unchanged until Backward.
	NoCopy bool

	name  string
	dim   int
	train bool    // mode of the last Forward
	skip  float32 // skip weight (RepBN alpha) of the last Forward

	x, y, dx         *tensor.Tensor
	xs               *tensor.Tensor // input Backward reads (copy in training, reference in eval)
	mean, rstd       *tensor.Tensor // statistics the last Forward used
	va, vb, vd, vvar *tensor.Tensor // per-channel scratch
	sdy, sdyx        *tensor.Tensor
	shp              []int
}

// NewBatchNorm returns a BatchNorm with weight 1, bias 0 and running
// statistics 0 / 1 (name.weight, name.bias, name.running_mean,
// name.running_var, name.num_batches_tracked).
func NewBatchNorm(name string, dim int, eps, momentum float32) *BatchNorm {
	b := &BatchNorm{Weight: NewParam(name+".weight", true, dim), Bias: NewParam(name+".bias", true, dim),
		RunningMean: tensor.New(dim), RunningVar: tensor.New(dim), Eps: eps, Momentum: momentum, name: name, dim: dim}
	Fill(b.Weight.W, 1)
	Fill(b.RunningVar, 1)
	return b
}

// Forward normalises x with batch statistics (Train, Recalibrate; the
// running ones are updated) or running statistics (Eval).
func (b *BatchNorm) Forward(x *tensor.Tensor, mode Mode) *tensor.Tensor {
	return b.forward(x, mode.batchStats(), 0)
}

// Backward returns dx and accumulates dweight, dbias.
func (b *BatchNorm) Backward(dy *tensor.Tensor) *tensor.Tensor {
	dx, _ := b.backward(dy, nil)
	return dx
}

// BackwardAdd is Backward returning dx + res, the sum formed in the same
// pass (a pre-norm block's residual gradient joining the norm's).
func (b *BatchNorm) BackwardAdd(dy, res *tensor.Tensor) *tensor.Tensor {
	dx, _ := b.backward(dy, res)
	return dx
}

// batchStats computes the batch mean (into b.mean) and biased variance
// (into b.vvar) of x and folds them into the running statistics.
func (b *BatchNorm) batchStats(x *tensor.Tensor) {
	rows, c := x.Rows(), b.dim
	mean := ensureDims(&b.mean, &b.shp, c)
	vr := ensureDims(&b.vvar, &b.shp, c)
	kernels.ColMeanVar(mean.Data, vr.Data, x.Data, rows, c)
	corr := float32(1)
	if rows > 1 {
		corr = float32(float64(rows) / float64(rows-1))
	}
	m := b.Momentum
	rm, rv := b.RunningMean.Data[:c], b.RunningVar.Data[:c]
	for j := range rm {
		rm[j] = (1-m)*rm[j] + m*mean.Data[j]
		rv[j] = (1-m)*rv[j] + m*vr.Data[j]*corr
	}
	b.NumBatchesTracked++
}

func (b *BatchNorm) forward(x *tensor.Tensor, train bool, skip float32) *tensor.Tensor {
	b.prepare(x, train, skip)
	rows, c := x.Rows(), b.dim
	y := tensor.Ensure(&b.y, x.Shape...)
	kernels.AffineCols2(y.Data, x.Data, b.va.Data, x.Data, b.vb.Data, b.mean.Data, b.Bias.W.Data, rows, c)
	return y
}

// prepare is the forward up to its output pass: it keeps the input for
// Backward, takes the statistics (batch ones in training, updating the
// running estimates) and leaves in va the skip weight and in vb gamma/std
// per channel, so that y = va*x + vb*(x - mean) + beta.
func (b *BatchNorm) prepare(x *tensor.Tensor, train bool, skip float32) {
	checkDim("BatchNorm", b.name, x, b.dim)
	c := b.dim
	b.train, b.skip = train, skip
	b.xs = keepInput(&b.x, x, train, b.NoCopy)
	rstd := ensureDims(&b.rstd, &b.shp, c)
	if train {
		b.batchStats(x)
	} else {
		copy(ensureDims(&b.mean, &b.shp, c).Data, b.RunningMean.Data)
		copy(ensureDims(&b.vvar, &b.shp, c).Data, b.RunningVar.Data)
	}
	a := ensureDims(&b.va, &b.shp, c)
	g := ensureDims(&b.vb, &b.shp, c)
	gamma := b.Weight.W.Data[:c]
	for j := 0; j < c; j++ {
		rstd.Data[j] = float32(1 / math.Sqrt(float64(b.vvar.Data[j])+float64(b.Eps)))
		a.Data[j] = skip
		g.Data[j] = gamma[j] * rstd.Data[j]
	}
}

// backward returns dx (plus res, when not nil) and sum(dy*x), the gradient
// of the skip weight.
func (b *BatchNorm) backward(dy, res *tensor.Tensor) (*tensor.Tensor, float64) {
	checkDim("BatchNorm", b.name, dy, b.dim)
	if b.xs == nil || len(b.xs.Data) != len(dy.Data) {
		panic(fmt.Sprintf("nn.BatchNorm %s: Backward %v without a matching Forward", b.name, dy.Shape))
	}
	rows, c := dy.Rows(), b.dim
	sdy := ensureDims(&b.sdy, &b.shp, c)
	sdyx := ensureDims(&b.sdyx, &b.shp, c)
	kernels.ColSumsDot(sdy.Data, sdyx.Data, dy.Data, b.xs.Data, b.mean.Data[:c], rows, c)
	dskip := b.gradCoeffs(sdy.Data, sdyx.Data, 1, rows)
	dx := tensor.Ensure(&b.dx, dy.Shape...)
	var rd []float32
	if res != nil {
		checkSame("BatchNorm.Backward", dy, res)
		rd = res.Data
	}
	if b.train {
		kernels.AffineCols2Res(dx.Data, dy.Data, b.va.Data, b.xs.Data, b.vb.Data, b.mean.Data, b.vd.Data, rd, rows, c)
	} else {
		kernels.AffineCols(dx.Data, dy.Data, b.va.Data, nil, rows, c)
		if rd != nil {
			kernels.Add(dx.Data, dx.Data, rd)
		}
	}
	return dx, dskip
}

// gradCoeffs turns the column sums of a backward pass, sum dy and
// sum dy*(x-mean), each times scale (the share of dy this norm receives:
// 1, or PRepBN's 1-lambda), into the weight and bias gradients (accumulated)
// and the input-gradient coefficients dx = va*dy + vb*(x - mean) + vd (left
// in va, vb, vd; va is not scaled). It returns the skip weight's gradient.
func (b *BatchNorm) gradCoeffs(sdy, sdyx []float32, scale float32, rows int) float64 {
	c := b.dim
	mean, rstd := b.mean.Data[:c], b.rstd.Data[:c]
	gamma := b.Weight.W.Data[:c]
	dgamma, dbeta := b.Weight.G.Data[:c], b.Bias.G.Data[:c]
	k1 := ensureDims(&b.va, &b.shp, c).Data
	k2 := ensureDims(&b.vb, &b.shp, c).Data
	k3 := ensureDims(&b.vd, &b.shp, c).Data
	var dskip float64
	invM := 1 / float32(max(rows, 1))
	for j := 0; j < c; j++ {
		sd, sx := scale*sdy[j], scale*sdyx[j]
		sxh := rstd[j] * sx // sum dy*xhat
		dgamma[j] += sxh
		dbeta[j] += sd
		dskip += float64(sx) + float64(mean[j])*float64(sd)
		g := gamma[j] * rstd[j]
		k1[j] = g + b.skip
		k2[j] = -g * rstd[j] * sxh * invM
		k3[j] = -g * sd * invM
	}
	return dskip
}

// ForwardStats updates the running statistics (and num_batches_tracked)
// from x and nothing else: the BN re-calibration of docs/method.md 1.4, which runs
// the model in eval mode with BatchNorms in train mode under no-grad.
func (b *BatchNorm) ForwardStats(x *tensor.Tensor) {
	checkDim("BatchNorm", b.name, x, b.dim)
	b.batchStats(x)
}

// Affine returns the eval-mode per-channel map BN(x)_c = a_c*x_c + c_c,
// a_c = gamma_c/s_c, c_c = beta_c - gamma_c*mu_c/s_c, s_c = sqrt(running_var_c
// + eps), computed in float64 (the folds of docs/method.md 2.1 start here).
func (b *BatchNorm) Affine() (a, c []float32) {
	a, c = make([]float32, b.dim), make([]float32, b.dim)
	for j := range a {
		s := math.Sqrt(float64(b.RunningVar.Data[j]) + float64(b.Eps))
		g := float64(b.Weight.W.Data[j]) / s
		a[j] = float32(g)
		c[j] = float32(float64(b.Bias.W.Data[j]) - g*float64(b.RunningMean.Data[j]))
	}
	return a, c
}

// Params returns weight and bias.
func (b *BatchNorm) Params() []*Param { return []*Param{b.Weight, b.Bias} }

// Buffers returns running_mean, running_var and num_batches_tracked.
func (b *BatchNorm) Buffers() []*Buffer {
	return []*Buffer{{Name: b.name + ".running_mean", F: b.RunningMean}, {Name: b.name + ".running_var", F: b.RunningVar},
		{Name: b.name + ".num_batches_tracked", I: &b.NumBatchesTracked}}
}
