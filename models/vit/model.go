// Package vit is slab's DeiT family: plain DeiT (LayerNorm + softmax, class
// token), DeiT-PRepBN (RepBN or progressive LinearNorm + softmax, class
// token) and SLAB-DeiT (PRepBN + simplified linear attention, mean pooling),
// SLAB.md 4.1, plus small 28x28 twins for MNIST-sized experiments.
//
// Design choices:
//
//   - The model is a fixed stack of nn layers called in order; forward and
//     backward are written out by hand (no tape). Each layer owns its output
//     and gradient buffers; the model owns only the residual sums, the token
//     assembly (class token + position embedding) and the pooled features,
//     all grown with tensor.Ensure. A steady-state Forward or Forward +
//     Backward therefore allocates nothing.
//   - Every parameter carries its official PyTorch state-dict name (the
//     layers are built with their full prefix), so checkpoint import and
//     export (official.go) are name lookups. SLAB-DeiT keeps the unused
//     cls_token parameter for the same reason; it never receives gradient.
//   - The norm kind is a Config string rather than a type parameter: one
//     forward serves the LayerNorm, RepBN, PRepBN, BatchNorm and folded
//     ("none") variants, and package fuse turns one into another by
//     building a "none" model and rewriting Linears.
//   - Validation runs in eval mode, where a LinearNorm is its RepBN branch
//     with running statistics (SLAB.md 1.2), so accuracy measured during
//     training is that of the deploy model.
package vit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Attention is the interface both attention layers (*nn.Attention,
// *nn.SLA) satisfy.
type Attention interface {
	nn.Module
	Forward(x *tensor.Tensor) *tensor.Tensor
	Backward(dy *tensor.Tensor) *tensor.Tensor
}

// Block is one pre-norm Transformer block:
// x = x + DropPath(Attn(Norm1(x))); x = x + DropPath(MLP(Norm2(x))).
type Block struct {
	Norm1 nn.Norm
	Attn  Attention
	Norm2 nn.Norm
	MLP   *nn.MLP
	// DP1 and DP2 drop the attention and MLP branches per sample.
	DP1, DP2 nn.DropPath

	x1, out, dx1, dx *tensor.Tensor
}

// Model is a DeiT-family vision Transformer. Fields are exported for
// package fuse and for tests; use New to build one.
type Model struct {
	Cfg Config

	PatchEmbed *nn.PatchEmbed
	// ClsToken [1,1,Dim] is used only when Cfg.ClsToken; PosEmbed is
	// [1,Cfg.Tokens(),Dim].
	ClsToken, PosEmbed *nn.Param
	Blocks             []*Block
	Norm               nn.Norm
	Head               *nn.Linear

	pool nn.MeanTokens
	rng  *rand.Rand
	pcg  *rand.PCG // rng's source, reseeded in place (no allocation per step)

	params      []*nn.Param
	buffers     []*nn.Buffer
	linearNorms []*nn.LinearNorm

	// lastTrain records whether the last Forward was in training mode, the
	// only mode whose activations Backward may differentiate.
	lastTrain bool
	batch     int

	tokens, pooled *tensor.Tensor // forward scratch
	dpe, dfinal    *tensor.Tensor // backward scratch
	shp            [4]int         // storage for shape()
}

// New builds a model with the official initialisation (SLAB.md 4.1):
// Linears trunc-normal(0.02) with zero bias (the head too), the patch conv
// PyTorch's default uniform(±1/sqrt(fan_in)) for weight and bias, pos_embed
// and cls_token trunc-normal(0.02), SLA positional_encoding zeros and DWC
// the conv default, LayerNorm 1/0, RepBN alpha 1 gamma 1, BN 1/0. The same
// seed gives the same weights.
func New(cfg Config, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg}
	rng := rand.New(rand.NewPCG(seed, 0x5eed0f51ab))
	C, N := cfg.Dim, cfg.Tokens()

	m.ClsToken = nn.NewParam("cls_token", true, 1, 1, C)
	m.PosEmbed = nn.NewParam("pos_embed", true, 1, N, C)
	m.PatchEmbed = nn.NewPatchEmbed("patch_embed.proj", cfg.InChans, C, cfg.Patch)
	nn.TruncNormal(m.ClsToken.W, 0.02, rng)
	nn.TruncNormal(m.PosEmbed.W, 0.02, rng)
	fanIn := float64(cfg.InChans * cfg.Patch * cfg.Patch)
	nn.Uniform(m.PatchEmbed.Weight.W, 1/math.Sqrt(fanIn), rng)
	nn.Uniform(m.PatchEmbed.Bias.W, 1/math.Sqrt(fanIn), rng)

	initLinear := func(l *nn.Linear) {
		nn.TruncNormal(l.Weight.W, 0.02, rng)
		if l.Bias != nil {
			l.Bias.W.Zero()
		}
	}
	m.Blocks = make([]*Block, cfg.Depth)
	for i := range m.Blocks {
		p := fmt.Sprintf("blocks.%d.", i)
		b := &Block{Norm1: m.newNorm(p + "norm1"), Norm2: m.newNorm(p + "norm2")}
		switch cfg.Attn {
		case AttnSoftmax:
			a := nn.NewAttention(p+"attn", C, cfg.Heads, true)
			initLinear(a.QKV)
			initLinear(a.Proj)
			b.Attn = a
		case AttnSLA:
			g := cfg.Grid()
			a := nn.NewSLA(p+"attn", C, cfg.Heads, g, g, cfg.DWCKernel, true)
			initLinear(a.QKV)
			initLinear(a.Proj)
			a.PosEnc.W.Zero()
			bound := 1 / float64(cfg.DWCKernel) // fan_in = 1·k·k
			nn.Uniform(a.DWCWeight.W, bound, rng)
			nn.Uniform(a.DWCBias.W, bound, rng)
			b.Attn = a
		}
		b.MLP = nn.NewMLP(p+"mlp", C, cfg.Hidden())
		initLinear(b.MLP.FC1)
		initLinear(b.MLP.FC2)
		var rate float32 // timm: linspace(0, DropPath, Depth)
		if cfg.Depth > 1 {
			rate = cfg.DropPath * float32(i) / float32(cfg.Depth-1)
		}
		b.DP1.Rate, b.DP2.Rate = rate, rate
		m.Blocks[i] = b
	}
	m.Norm = m.newNorm("norm")
	m.Head = nn.NewLinear("head", C, cfg.Classes, true)
	initLinear(m.Head)
	m.pcg = rand.NewPCG(seed, 0xd709a7)
	m.rng = rand.New(m.pcg)
	m.collect()
	return m, nil
}

// newNorm builds the norm Cfg.Norm asks for at the given state-dict prefix
// and records LinearNorms for the schedule accessors.
func (m *Model) newNorm(name string) nn.Norm {
	// Every norm input (the token buffer, each block's residual sums)
	// stays unchanged until Backward, so the norms need not copy it.
	c := m.Cfg
	newLN := func(name string) *nn.LayerNorm {
		l := nn.NewLayerNorm(name, c.Dim, c.LNEps)
		l.NoCopy = true
		return l
	}
	newRepBN := func(name string) *nn.RepBN {
		r := nn.NewRepBN(name, c.Dim, BNEps, 1, 1)
		r.BN.NoCopy = true
		return r
	}
	switch c.Norm {
	case NormLayerNorm:
		return newLN(name)
	case NormRepBN:
		return newRepBN(name)
	case NormPRepBN:
		ln := nn.NewLinearNorm(name, newLN(name+".norm1"), newRepBN(name+".norm2"), c.Warm, c.Step)
		m.linearNorms = append(m.linearNorms, ln)
		return ln
	case NormBatchNorm:
		b := nn.NewBatchNorm(name, c.Dim, BNEps, BNMomentum)
		b.NoCopy = true
		return b
	default: // NormNone, Validate has rejected the rest
		return nn.Identity{}
	}
}

// collect lists parameters and buffers in state-dict order.
func (m *Model) collect() {
	m.params = []*nn.Param{m.ClsToken, m.PosEmbed}
	m.params = append(m.params, m.PatchEmbed.Params()...)
	m.buffers = nil
	add := func(mod nn.Module) {
		m.params = append(m.params, mod.Params()...)
		m.buffers = append(m.buffers, mod.Buffers()...)
	}
	for _, b := range m.Blocks {
		add(b.Norm1)
		add(b.Attn)
		add(b.Norm2)
		add(b.MLP)
	}
	add(m.Norm)
	add(m.Head)
}

// Reindex rebuilds the Params and Buffers lists. Call it after replacing a
// layer's parameters (package fuse creates biases this way).
func (m *Model) Reindex() { m.collect() }

// Params lists every learnable parameter under its official state-dict name.
func (m *Model) Params() []*nn.Param { return m.params }

// Buffers lists BN running statistics, num_batches_tracked and the
// LinearNorm counters (warm, iter, total_step).
func (m *Model) Buffers() []*nn.Buffer { return m.buffers }

// NumParams counts parameter elements, including the LinearNorm LN branch
// and the (possibly unused) cls_token, as PyTorch's parameter count does.
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.params {
		n += p.W.Size()
	}
	return n
}

// Lambda is the LayerNorm weight the next training forward will use: the
// LinearNorm schedule for prepbn models, 1 for layernorm and 0 for the
// BatchNorm-based and folded ones.
func (m *Model) Lambda() float64 {
	if len(m.linearNorms) > 0 {
		return m.linearNorms[0].Lambda()
	}
	if m.Cfg.Norm == NormLayerNorm {
		return 1
	}
	return 0
}

// SetSchedule restarts every LinearNorm with T = step (iter = total_step =
// step), so lambda decays from 1 to 0 over the next step training forwards.
// Call it before training; it does nothing for other norms.
func (m *Model) SetSchedule(step int64) {
	m.Cfg.Step = step
	for _, l := range m.linearNorms {
		l.Iter, l.TotalStep = step, step
	}
}

// SetDropPathSeed reseeds the generator drop path draws from: the same
// stream as a fresh generator with that seed (math/rand/v2's Rand keeps no
// state of its own), without allocating one every step.
func (m *Model) SetDropPathSeed(seed uint64) { m.pcg.Seed(seed, 0xd709a7) }

// normMode selects how a norm runs: training, evaluation, or the BN
// re-calibration pass (eval model, BatchNorms in train mode).
type normMode int

const (
	modeEval normMode = iota
	modeTrain
	modeRecal
)

func runNorm(n nn.Norm, x *tensor.Tensor, mode normMode) *tensor.Tensor {
	if mode != modeRecal {
		return n.Forward(x, mode == modeTrain)
	}
	switch n := n.(type) {
	case *nn.LinearNorm:
		// Eval-mode LinearNorm is its RepBN; calling the RepBN directly in
		// train mode updates its statistics without advancing the schedule.
		return n.Norm2.Forward(x, true)
	case *nn.RepBN, *nn.BatchNorm:
		return n.Forward(x, true)
	default:
		return n.Forward(x, false)
	}
}

// checkInput validates an image batch against the config.
func (m *Model) checkInput(x *tensor.Tensor) (int, error) {
	c := m.Cfg
	if x == nil {
		return 0, fmt.Errorf("vit: %s: nil input", c.Name)
	}
	if len(x.Shape) != 4 || x.Shape[0] < 1 || x.Shape[1] != c.InChans || x.Shape[2] != c.ImgSize || x.Shape[3] != c.ImgSize {
		return 0, fmt.Errorf("vit: %s: input shape %v, want [B,%d,%d,%d] with B >= 1", c.Name, x.Shape, c.InChans, c.ImgSize, c.ImgSize)
	}
	if len(x.Data) != tensor.Numel(x.Shape) {
		return 0, fmt.Errorf("vit: %s: input has %d values for shape %v", c.Name, len(x.Data), x.Shape)
	}
	return x.Shape[0], nil
}

// shape returns dims in storage owned by the model: tensor.Ensure's shape
// parameter escapes (its panic message formats it), so a literal variadic
// call would allocate on every step.
func (m *Model) shape(dims ...int) []int {
	n := copy(m.shp[:], dims)
	return m.shp[:n]
}

// Forward maps images [B,InChans,Img,Img] to logits [B,Classes]. In
// training mode it advances every LinearNorm schedule by one call, uses
// batch statistics and drop path. The result is owned by the model and
// valid until the next Forward.
func (m *Model) Forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	mode := modeEval
	if train {
		mode = modeTrain
	}
	return m.forward(x, mode)
}

// Recalibrate runs the BN-statistics pass of SLAB.md 1.4 on one batch: an
// eval-mode forward (LinearNorm = RepBN, no drop path, schedules frozen) in
// which every BatchNorm normalises with batch statistics and updates its
// running mean/var. Parameters do not change.
func (m *Model) Recalibrate(x *tensor.Tensor) error {
	_, err := m.forward(x, modeRecal)
	m.lastTrain = false
	return err
}

func (m *Model) forward(x *tensor.Tensor, mode normMode) (*tensor.Tensor, error) {
	B, err := m.checkInput(x)
	if err != nil {
		return nil, err
	}
	train := mode == modeTrain
	m.lastTrain, m.batch = train, B
	c := m.Cfg
	C, N, P := c.Dim, c.Tokens(), c.Patches()

	pe := m.PatchEmbed.Forward(x) // [B,P,C]
	tok := tensor.Ensure(&m.tokens, m.shape(B, N, C)...)
	pos := m.PosEmbed.W.Data
	if c.ClsToken {
		for b := range B {
			dst := tok.Data[b*N*C : (b+1)*N*C]
			kernels.Add(dst[:C], m.ClsToken.W.Data, pos[:C])
			kernels.Add(dst[C:], pe.Data[b*P*C:(b+1)*P*C], pos[C:])
		}
	} else {
		// each image is one row of N·C values; pos_embed broadcasts over B
		kernels.AddRowVec(tok.Data, pe.Data, pos, B, N*C)
	}

	h := tok
	for _, blk := range m.Blocks {
		h = blk.forward(h, mode, m.rng)
	}
	h = runNorm(m.Norm, h, mode)
	var feat *tensor.Tensor
	if c.ClsToken {
		feat = tensor.Ensure(&m.pooled, m.shape(B, C)...)
		for b := range B {
			copy(feat.Data[b*C:(b+1)*C], h.Data[b*N*C:])
		}
	} else {
		feat = m.pool.Forward(h)
	}
	return m.Head.Forward(feat), nil
}

func (b *Block) forward(x *tensor.Tensor, mode normMode, rng *rand.Rand) *tensor.Tensor {
	train := mode == modeTrain
	a := b.Attn.Forward(runNorm(b.Norm1, x, mode))
	a = b.DP1.Forward(a, train, rng)
	x1 := tensor.Ensure(&b.x1, x.Shape...)
	kernels.Add(x1.Data, x.Data, a.Data)
	h := b.MLP.Forward(runNorm(b.Norm2, x1, mode))
	h = b.DP2.Forward(h, train, rng)
	out := tensor.Ensure(&b.out, x.Shape...)
	kernels.Add(out.Data, x1.Data, h.Data)
	return out
}

// Backward differentiates the last Forward, which must have been in
// training mode, with respect to every parameter: gradients are
// ACCUMULATED into Params()[i].G (the trainer zeroes them). dlogits is
// d(loss)/d(logits) [B,Classes].
func (m *Model) Backward(dlogits *tensor.Tensor) {
	if !m.lastTrain {
		panic("vit: Backward without a preceding training-mode Forward")
	}
	c := m.Cfg
	B, C, N, P := m.batch, c.Dim, c.Tokens(), c.Patches()
	if dlogits.Size() != B*c.Classes {
		panic(fmt.Sprintf("vit: Backward: dlogits %v, want [%d,%d]", dlogits.Shape, B, c.Classes))
	}
	dfeat := m.Head.Backward(dlogits)
	var dh *tensor.Tensor
	if c.ClsToken {
		dh = tensor.EnsureZero(&m.dfinal, m.shape(B, N, C)...)
		for b := range B {
			copy(dh.Data[b*N*C:b*N*C+C], dfeat.Data[b*C:(b+1)*C])
		}
	} else {
		dh = m.pool.Backward(dfeat)
	}
	dh = m.Norm.Backward(dh)
	for i := len(m.Blocks) - 1; i >= 0; i-- {
		dh = m.Blocks[i].backward(dh)
	}

	// Token assembly: pos_embed collects the batch sum, the class token its
	// row 0, and the patch rows flow into the patch embedding.
	kernels.ColSums(m.PosEmbed.G.Data, dh.Data, B, N*C)
	if c.ClsToken {
		cg := m.ClsToken.G.Data
		for b := range B {
			kernels.AddTo(cg, dh.Data[b*N*C:b*N*C+C])
		}
	}
	dpe := dh
	if c.ClsToken {
		dpe = tensor.Ensure(&m.dpe, m.shape(B, P, C)...)
		for b := range B {
			copy(dpe.Data[b*P*C:(b+1)*P*C], dh.Data[b*N*C+C:(b+1)*N*C])
		}
	}
	m.PatchEmbed.Backward(dpe)
}

// backward adds each residual gradient inside the norm's own backward
// pass (nn.NormBackwardAdd) instead of a separate sum over memory.
func (b *Block) backward(dout *tensor.Tensor) *tensor.Tensor {
	dx1 := nn.NormBackwardAdd(b.Norm2, b.MLP.Backward(b.DP2.Backward(dout)), dout, &b.dx1)
	return nn.NormBackwardAdd(b.Norm1, b.Attn.Backward(b.DP1.Backward(dx1)), dx1, &b.dx)
}
