package nn

import "github.com/slabml/slab/tensor"

// BatchNorm is BatchNorm1d over the channel axis of [..., C].
type BatchNorm struct {
	Weight, Bias            *Param
	RunningMean, RunningVar *tensor.Tensor
	NumBatchesTracked       int64
	Eps, Momentum           float32
	name                    string
}

// NewBatchNorm returns a BatchNorm with weight 1, bias 0, running stats 0/1.
func NewBatchNorm(name string, dim int, eps, momentum float32) *BatchNorm {
	b := &BatchNorm{Weight: NewParam(name+".weight", true, dim), Bias: NewParam(name+".bias", true, dim),
		RunningMean: tensor.New(dim), RunningVar: tensor.New(dim), Eps: eps, Momentum: momentum, name: name}
	Fill(b.Weight.W, 1)
	Fill(b.RunningVar, 1)
	return b
}

// Forward normalises x with batch (train) or running (eval) statistics.
func (b *BatchNorm) Forward(x *tensor.Tensor, train bool) *tensor.Tensor { panic("not implemented") }

// Backward returns dx and accumulates dweight, dbias.
func (b *BatchNorm) Backward(dy *tensor.Tensor) *tensor.Tensor { panic("not implemented") }

// ForwardStats updates the running statistics from x only.
func (b *BatchNorm) ForwardStats(x *tensor.Tensor) { panic("not implemented") }

// Affine returns the eval-mode per-channel map y = a*x + b.
func (b *BatchNorm) Affine() (a, c []float32) { panic("not implemented") }

// Params returns weight and bias.
func (b *BatchNorm) Params() []*Param { return []*Param{b.Weight, b.Bias} }

// Buffers returns running_mean, running_var and num_batches_tracked.
func (b *BatchNorm) Buffers() []*Buffer {
	return []*Buffer{{Name: b.name + ".running_mean", F: b.RunningMean}, {Name: b.name + ".running_var", F: b.RunningVar},
		{Name: b.name + ".num_batches_tracked", I: &b.NumBatchesTracked}}
}
