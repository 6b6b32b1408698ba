package nn

import (
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/tensor"
)

// Initialisers draw from a caller-owned *rand.Rand so that one seed gives
// one model, whatever else the program draws. They reproduce PyTorch's
// distributions, not its random streams (bit-identical PyTorch init is
// impossible without its Mersenne Twister and sampling order).

// InitRand is the generator a model's initialisation draws from: seeded
// by (seed, stream), or nil when draw is false. Every initialiser here
// leaves its tensor as it is under a nil generator, so a model built for
// loading (a bare build) never writes, and the OS never provides, the
// pages of weights the checkpoint is about to fill or, for a quantized
// checkpoint, to drop.
func InitRand(draw bool, seed, stream uint64) *rand.Rand {
	if !draw {
		return nil
	}
	return rand.New(rand.NewPCG(seed, stream))
}

// TruncNormal fills t with normal(0, std) values truncated to [-2, 2]
// (absolute bounds, as timm's trunc_normal_(std=std) with its default a=-2,
// b=2): values outside are redrawn, which samples the truncated normal
// timm's inverse-CDF method samples. With the usual std = 0.02 the bounds
// are 100 std away and never met.
func TruncNormal(t *tensor.Tensor, std float64, rng *rand.Rand) {
	if rng == nil {
		return
	}
	for i := range t.Data {
		v := rng.NormFloat64() * std
		for tries := 0; (v < -2 || v > 2) && tries < 100; tries++ {
			v = rng.NormFloat64() * std
		}
		t.Data[i] = float32(min(max(v, -2), 2))
	}
}

// Uniform fills t with values uniform in [-bound, bound) (PyTorch's
// default Linear/Conv init uses bound = 1/sqrt(fan_in)).
func Uniform(t *tensor.Tensor, bound float64, rng *rand.Rand) {
	if rng == nil {
		return
	}
	for i := range t.Data {
		t.Data[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// XavierUniform fills a [out, in] weight uniform in ±sqrt(6/(in+out))
// (torch.nn.init.xavier_uniform_).
func XavierUniform(w *tensor.Tensor, rng *rand.Rand) {
	out, in := w.Dim(0), w.Size()/max(w.Dim(0), 1)
	Uniform(w, math.Sqrt(6/float64(in+out)), rng)
}

// Fill sets every element of t to v.
func Fill(t *tensor.Tensor, v float32) {
	for i := range t.Data {
		t.Data[i] = v
	}
}
