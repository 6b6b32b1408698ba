// Package backbone is the kit the vision families are assembled from: the
// pre-norm Transformer block over a token mixer told the grid, stages of
// blocks with an optional downsampling step in front, and a stack of
// stages that keeps every stage's output for multi-scale features. DeiT
// is one stage; Swin, PVT and CSwin are four. A family fills the blocks
// with its own mixers (softmax, SLA, window or spatial-reduction
// attention) and norms (built by nn.NormSpec); the kit owns the residual
// sums, drop path and the order of forward and backward.
package backbone

import (
	"math/rand/v2"

	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Grid is the token map a stage works on: H rows of W tokens, row-major,
// after any leading extra tokens (a class token).
type Grid struct{ H, W int }

// Tokens is H*W.
func (g Grid) Tokens() int { return g.H * g.W }

// Mixer mixes tokens [B, N, C] -> [B, N, C]: attention of any kind.
type Mixer interface {
	nn.Module
	// Forward mixes x, whose tokens lie on grid g.
	Forward(x *tensor.Tensor, g Grid) *tensor.Tensor
	// Backward returns dx for the last Forward and accumulates gradients.
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// GridFree adapts a mixer that does not need the grid (global softmax
// attention, an SLA built for one fixed map) to an AddMixer. The mixer
// forms the residual sum res + Forward(x) in its own last pass
// (nn.Attention, nn.SLA, nn.SLALePE, nn.StripeAttention: in proj's
// epilogue), with Forward's bits followed by the sum.
type GridFree struct {
	M interface {
		nn.Module
		Forward(x *tensor.Tensor) *tensor.Tensor
		ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor
		Backward(dy *tensor.Tensor) *tensor.Tensor
	}
}

// Forward ignores the grid.
func (g GridFree) Forward(x *tensor.Tensor, _ Grid) *tensor.Tensor { return g.M.Forward(x) }

// ForwardAdd is the mixer's, the grid ignored.
func (g GridFree) ForwardAdd(x *tensor.Tensor, _ Grid, res *tensor.Tensor) *tensor.Tensor {
	return g.M.ForwardAdd(x, res)
}

// Backward is the mixer's.
func (g GridFree) Backward(dy *tensor.Tensor) *tensor.Tensor { return g.M.Backward(dy) }

// Params is the mixer's.
func (g GridFree) Params() []*nn.Param { return g.M.Params() }

// Buffers is the mixer's.
func (g GridFree) Buffers() []*nn.Buffer { return g.M.Buffers() }

// AddMixer is a Mixer that can return the residual sum res + Forward(x, g)
// itself, forming it in its own last pass (a GEMM epilogue, a window
// reverse) instead of the block adding it in a pass of its own. The bits
// must be those of Forward followed by the sum.
type AddMixer interface {
	Mixer
	ForwardAdd(x *tensor.Tensor, g Grid, res *tensor.Tensor) *tensor.Tensor
}

// FFN is the block's feed-forward layer ([..., C] -> [..., C]).
type FFN interface {
	nn.Module
	Forward(x *tensor.Tensor) *tensor.Tensor
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// AddFFN is an FFN that can return res + Forward(x) itself (nn.MLP: in
// fc2's epilogue), with Forward's bits followed by the sum.
type AddFFN interface {
	FFN
	ForwardAdd(x, res *tensor.Tensor) *tensor.Tensor
}

// Block is one pre-norm Transformer block:
// x1 = x + DropPath(Mixer(Norm1(x))); out = x1 + DropPath(MLP(Norm2(x1))).
// Norm inputs (x and x1) stay unchanged until Backward, so norms built
// with NormSpec.NoCopy need not copy them.
type Block struct {
	Norm1 nn.Norm
	Mixer Mixer
	Norm2 nn.Norm
	MLP   FFN
	// DP1 and DP2 drop the mixer and MLP branches per sample.
	DP1, DP2 nn.DropPath

	x1, out, dx1, dx *tensor.Tensor
}

// Forward runs the block on x [B, N, C] whose last grid.Tokens() tokens
// lie on grid. Drop path draws from rng in Train mode. The result is owned
// by the block and valid until its next Forward.
func (b *Block) Forward(x *tensor.Tensor, g Grid, mode nn.Mode, rng *rand.Rand) *tensor.Tensor {
	train := mode.Training()
	if !train {
		return b.forwardEval(x, g, mode)
	}
	a := b.Mixer.Forward(b.Norm1.Forward(x, mode), g)
	a = b.DP1.Forward(a, train, rng)
	x1 := tensor.Ensure(&b.x1, x.Shape...)
	add(x1.Data, x.Data, a.Data)
	h := b.MLP.Forward(b.Norm2.Forward(x1, mode))
	h = b.DP2.Forward(h, train, rng)
	out := tensor.Ensure(&b.out, x.Shape...)
	add(out.Data, x1.Data, h.Data)
	return out
}

// forwardEval is Forward without drop path (identity outside training),
// each residual sum formed by its branch's last pass where the branch can
// (AddMixer, AddFFN): at batch 1 on two cores a separate sum is a pass
// over memory and a fork/join per block that the GEMM epilogue does for
// nothing. Same bits as the separate sums. The output is owned by the
// block or by its MLP, valid until the block's next Forward.
func (b *Block) forwardEval(x *tensor.Tensor, g Grid, mode nn.Mode) *tensor.Tensor {
	var x1 *tensor.Tensor
	if m, ok := b.Mixer.(AddMixer); ok {
		x1 = m.ForwardAdd(b.Norm1.Forward(x, mode), g, x)
	} else {
		a := b.Mixer.Forward(b.Norm1.Forward(x, mode), g)
		x1 = tensor.Ensure(&b.x1, x.Shape...)
		add(x1.Data, x.Data, a.Data)
	}
	if f, ok := b.MLP.(AddFFN); ok {
		return f.ForwardAdd(b.Norm2.Forward(x1, mode), x1)
	}
	h := b.MLP.Forward(b.Norm2.Forward(x1, mode))
	out := tensor.Ensure(&b.out, x.Shape...)
	add(out.Data, x1.Data, h.Data)
	return out
}

// Backward returns dx for dout of the last Train Forward; each residual
// gradient joins inside the norm's own backward pass
// (nn.NormBackwardAdd) instead of a separate sum over memory.
func (b *Block) Backward(dout *tensor.Tensor) *tensor.Tensor {
	dx1 := nn.NormBackwardAdd(b.Norm2, b.MLP.Backward(b.DP2.Backward(dout)), dout, &b.dx1)
	return nn.NormBackwardAdd(b.Norm1, b.Mixer.Backward(b.DP1.Backward(dx1)), dx1, &b.dx)
}

// Params lists norm1, mixer, norm2 and MLP parameters in that order (the
// official state-dict order).
func (b *Block) Params() []*nn.Param {
	var ps []*nn.Param
	for _, m := range []nn.Module{b.Norm1, b.Mixer, b.Norm2, b.MLP} {
		ps = append(ps, m.Params()...)
	}
	return ps
}

// Buffers lists the buffers in the same order.
func (b *Block) Buffers() []*nn.Buffer {
	var bs []*nn.Buffer
	for _, m := range []nn.Module{b.Norm1, b.Mixer, b.Norm2, b.MLP} {
		bs = append(bs, m.Buffers()...)
	}
	return bs
}

// NormSlots returns the block's two norms under prefix+"norm1"/"norm2".
func (b *Block) NormSlots(prefix string) []nn.NormSlot {
	return []nn.NormSlot{{Name: prefix + "norm1", Norm: &b.Norm1}, {Name: prefix + "norm2", Norm: &b.Norm2}}
}
