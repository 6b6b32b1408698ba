package train

import (
	"fmt"
	"math"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
)

// AdamW is PyTorch's torch.optim.AdamW: Adam moments with bias correction and
// weight decay decoupled from the gradient (p -= lr*wd*p before the Adam
// update). Parameters flagged NoDecay (biases, 1-D norm parameters, alpha,
// pos_embed, cls_token; SLAB.md 5) are not decayed.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// Steps is the number of updates taken so far (PyTorch's per-parameter
	// "step", identical for all parameters here).
	Steps int64
	// M and V are the first and second moments, one slice per parameter, in
	// the order of the parameters given to NewAdamW.
	M, V   [][]float32
	params []*nn.Param
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
// scalars are computed in float64 once per step.
func (o *AdamW) Step(lr float64) {
	o.Steps++
	t := float64(o.Steps)
	bc1 := 1 - math.Pow(o.Beta1, t)
	bc2 := 1 - math.Pow(o.Beta2, t)
	stepSize := float32(lr / bc1)
	invSqrtBC2 := float32(1 / math.Sqrt(bc2))
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	eps := float32(o.Eps)
	for i, p := range o.params {
		decay := float32(1)
		if !p.NoDecay && o.WeightDecay != 0 {
			decay = float32(1 - lr*o.WeightDecay)
		}
		w, g, m, v := p.W.Data, p.G.Data, o.M[i], o.V[i]
		// Elementwise and memory-bound: split only large tensors so small
		// ones do not pay the goroutine hand-off.
		kernels.ParallelFor(len(w), 1<<15, func(lo, hi int) {
			adamwUpdate(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], decay, b1, b2, stepSize, invSqrtBC2, eps)
		})
	}
}

// adamwUpdate is the per-element AdamW rule, in PyTorch's operation order
// (decay, moments, denom = sqrt(v)/sqrt(bc2) + eps, p -= lr/bc1 * m/denom).
func adamwUpdate(w, g, m, v []float32, decay, b1, b2, stepSize, invSqrtBC2, eps float32) {
	g = g[:len(w)]
	m = m[:len(w)]
	v = v[:len(w)]
	for j := range w {
		gj := g[j]
		w[j] *= decay
		mj := b1*m[j] + (1-b1)*gj
		vj := b2*v[j] + (1-b2)*gj*gj
		m[j], v[j] = mj, vj
		denom := float32(math.Sqrt(float64(vj)))*invSqrtBC2 + eps
		w[j] -= stepSize * mj / denom
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
		for _, g := range p.G.Data {
			ss += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 {
		if c := maxNorm / (norm + 1e-6); c < 1 {
			cf := float32(c)
			for _, p := range ps {
				for j := range p.G.Data {
					p.G.Data[j] *= cf
				}
			}
		}
	}
	return norm
}
