package train

import (
	"fmt"
	"math"
	"sort"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
)

// AdamW is PyTorch's torch.optim.AdamW: Adam moments with bias correction and
// weight decay decoupled from the gradient (p -= lr*wd*p before the Adam
// update). Parameters flagged NoDecay (biases, 1-D norm parameters, alpha,
// pos_embed, cls_token; docs/method.md 5) are not decayed.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// Steps is the number of updates taken so far (PyTorch's per-parameter
	// "step", identical for all parameters here).
	Steps int64
	// M and V are the first and second moments, one slice per parameter, in
	// the order of the parameters given to NewAdamW.
	M, V   [][]float32
	params []*nn.Param

	offsets        []int // element offset of each parameter, laid end to end
	decay, noDecay kernels.AdamWStep
	stepFn         func(lo, hi int) // stepRange, bound once
}

// NewAdamW returns an AdamW over ps with the SLAB defaults: betas
// (0.9, 0.999), eps 1e-8 and the given decoupled weight decay.
func NewAdamW(ps []*nn.Param, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, params: ps}
	o.M = make([][]float32, len(ps))
	o.V = make([][]float32, len(ps))
	for i, p := range ps {
		o.M[i] = make([]float32, len(p.W.Data))
		o.V[i] = make([]float32, len(p.W.Data))
	}
	return o
}

// Params returns the parameters the optimizer updates.
func (o *AdamW) Params() []*nn.Param { return o.params }

// Step applies one update with learning rate lr using the gradients in
// Param.G. Moments are kept in float32 like PyTorch's; the bias-correction
// scalars are computed in float64 once per step. All parameters form one
// element range split across the worker pool (kernels.AdamW per piece), a
// single parallel region per step that allocates nothing.
func (o *AdamW) Step(lr float64) {
	o.Steps++
	t := float64(o.Steps)
	bc1 := 1 - math.Pow(o.Beta1, t)
	bc2 := 1 - math.Pow(o.Beta2, t)
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	base := kernels.AdamWStep{Decay: 1, Beta1: b1, OneMinusB1: 1 - b1, Beta2: b2, OneMinusB2: 1 - b2,
		StepSize: float32(lr / bc1), InvSqrtBC2: float32(1 / math.Sqrt(bc2)), Eps: float32(o.Eps)}
	o.noDecay, o.decay = base, base
	if o.WeightDecay != 0 {
		o.decay.Decay = float32(1 - lr*o.WeightDecay)
	}
	if o.offsets == nil {
		o.offsets = make([]int, len(o.params)+1)
		for i, p := range o.params {
			o.offsets[i+1] = o.offsets[i] + len(p.W.Data)
		}
		o.stepFn = o.stepRange
	}
	for _, p := range o.params {
		p.MarkChanged() // caches of W (a Linear's packed weight) are stale
	}
	kernels.ParallelFor(o.offsets[len(o.params)], 1<<14, o.stepFn)
}

// stepRange updates elements [lo, hi) of the parameters laid end to end.
func (o *AdamW) stepRange(lo, hi int) {
	i := sort.SearchInts(o.offsets, lo+1) - 1
	for ; i < len(o.params) && o.offsets[i] < hi; i++ {
		p := o.params[i]
		a, b := max(lo, o.offsets[i])-o.offsets[i], min(hi, o.offsets[i+1])-o.offsets[i]
		s := &o.decay
		if p.NoDecay {
			s = &o.noDecay
		}
		kernels.AdamW(p.W.Data[a:b], p.G.Data[a:b], o.M[i][a:b], o.V[i][a:b], s)
	}
}

// checkState verifies that loaded moments match the parameters.
func (o *AdamW) checkState() error {
	for i, p := range o.params {
		if len(o.M[i]) != len(p.W.Data) || len(o.V[i]) != len(p.W.Data) {
			return fmt.Errorf("adamw state for %s has %d/%d values, want %d", p.Name, len(o.M[i]), len(o.V[i]), len(p.W.Data))
		}
	}
	return nil
}

// ClipGradNorm scales all gradients so that their global L2 norm is at most
// maxNorm (torch.nn.utils.clip_grad_norm_: coefficient maxNorm/(norm+1e-6),
// applied only when below 1) and returns the norm before clipping. maxNorm
// <= 0 only measures. The sum of squares is accumulated in float64 so the
// result does not depend on parameter order rounding.
func ClipGradNorm(ps []*nn.Param, maxNorm float64) float64 {
	var ss float64
	for _, p := range ps {
		ss += kernels.SumSquares(p.G.Data)
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 {
		if c := maxNorm / (norm + 1e-6); c < 1 {
			cf := float32(c)
			for _, p := range ps {
				kernels.Scale(p.G.Data, cf, p.G.Data)
			}
		}
	}
	return norm
}
