// Package vit is slab's DeiT family: plain DeiT (LayerNorm + softmax, class
// token), DeiT-PRepBN (RepBN or progressive LinearNorm + softmax, class
// token) and SLAB-DeiT (PRepBN + simplified linear attention, mean pooling),
// docs/method.md 4.1, plus small 28x28 twins for MNIST-sized experiments.
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
//   - The norm kind is a Config string turned into an nn.NormSpec: one
//     forward serves the LayerNorm, RepBN, PRepBN, BatchNorm and folded
//     ("none") variants; the model declares its fold sites and package fuse
//     folds them in place.
//   - DeiT is one stage of the backbone kit (models/backbone): its blocks
//     are backbone.Blocks over softmax attention or SLA.
//   - Validation runs in eval mode, where a LinearNorm is its RepBN branch
//     with running statistics (docs/method.md 1.2), so accuracy measured during
//     training is that of the deploy model.
package vit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/kernels"
	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Model is a DeiT-family vision Transformer. Fields are exported for
// package fuse and for tests; use New to build one.
type Model struct {
	Cfg Config

	PatchEmbed *nn.PatchEmbed
	// ClsToken [1,1,Dim] is used only when Cfg.ClsToken; PosEmbed is
	// [1,Cfg.Tokens(),Dim].
	ClsToken, PosEmbed *nn.Param
	Blocks             []*backbone.Block
	Norm               nn.Norm
	// stages is Blocks as the backbone kit's single stage (DeiT has one
	// grid and no downsampling).
	stages backbone.Stages
	Head   *nn.Linear

	pool nn.MeanTokens
	rng  *rand.Rand
	pcg  *rand.PCG // rng's source, reseeded in place (no allocation per step)

	params  []*nn.Param
	buffers []*nn.Buffer
	norms   []nn.NormSlot

	// lastTrain records whether the last Forward was in training mode, the
	// only mode whose activations Backward may differentiate.
	lastTrain bool
	batch     int

	tokens, pooled *tensor.Tensor // forward scratch
	dpe, dfinal    *tensor.Tensor // backward scratch
	shp            [4]int         // storage for shape()
}

// New builds a model with the official initialisation (docs/method.md 4.1):
// Linears trunc-normal(0.02) with zero bias (the head too), the patch conv
// PyTorch's default uniform(±1/sqrt(fan_in)) for weight and bias, pos_embed
// and cls_token trunc-normal(0.02), SLA positional_encoding zeros and DWC
// the conv default, LayerNorm 1/0, RepBN alpha 1 gamma 1, BN 1/0. The same
// seed gives the same weights.
func New(cfg Config, seed uint64) (*Model, error) { return build(cfg, seed, true) }

// build is New; draw false leaves the parameters' random values out:
// every parameter is allocated (memory the OS has not provided yet, so
// not resident until written) for a load that overwrites them all
// (models.BuildBare).
func build(cfg Config, seed uint64, draw bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg}
	rng := nn.InitRand(draw, seed, 0x5eed0f51ab)
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
	spec := cfg.NormSpec()
	m.Blocks = make([]*backbone.Block, cfg.Depth)
	for i := range m.Blocks {
		p := fmt.Sprintf("blocks.%d.", i)
		b := &backbone.Block{Norm1: spec.New(p+"norm1", C), Norm2: spec.New(p+"norm2", C)}
		switch cfg.Attn {
		case AttnSoftmax:
			a := nn.NewAttention(p+"attn", C, cfg.Heads, true)
			initLinear(a.QKV)
			initLinear(a.Proj)
			b.Mixer = backbone.GridFree{M: a}
		case AttnSLA:
			g := cfg.Grid()
			a := nn.NewSLA(p+"attn", C, cfg.Heads, g, g, cfg.DWCKernel, true)
			initLinear(a.QKV)
			initLinear(a.Proj)
			a.PosEnc.W.Zero()
			bound := 1 / float64(cfg.DWCKernel) // fan_in = 1·k·k
			nn.Uniform(a.DWCWeight.W, bound, rng)
			nn.Uniform(a.DWCBias.W, bound, rng)
			b.Mixer = backbone.GridFree{M: a}
		}
		mlp := nn.NewMLP(p+"mlp", C, cfg.Hidden())
		initLinear(mlp.FC1)
		initLinear(mlp.FC2)
		b.MLP = mlp
		var rate float32 // timm: linspace(0, DropPath, Depth)
		if cfg.Depth > 1 {
			rate = cfg.DropPath * float32(i) / float32(cfg.Depth-1)
		}
		b.DP1.Rate, b.DP2.Rate = rate, rate
		m.Blocks[i] = b
	}
	m.stages.List = []*backbone.Stage{{Blocks: m.Blocks}}
	m.Norm = spec.New("norm", C)
	m.Head = nn.NewLinear("head", C, cfg.Classes, true)
	initLinear(m.Head)
	m.pcg = rand.NewPCG(seed, 0xd709a7)
	m.rng = rand.New(m.pcg)
	m.collect()
	return m, nil
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
		add(b)
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

// SetDropPathSeed reseeds the generator drop path draws from: the same
// stream as a fresh generator with that seed (math/rand/v2's Rand keeps no
// state of its own), without allocating one every step.
func (m *Model) SetDropPathSeed(seed uint64) { m.pcg.Seed(seed, 0xd709a7) }

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

// Forward maps images [B,InChans,Img,Img] to logits [B,Classes]. In Train
// mode it advances every LinearNorm schedule by one call and uses batch
// statistics and drop path; Recalibrate is the BN-statistics pass of
// docs/method.md 1.4 (eval model, BatchNorms on batch statistics,
// parameters and schedules unchanged). The result is owned by the model
// and valid until the next Forward.
func (m *Model) Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error) {
	B, err := m.checkInput(x)
	if err != nil {
		return nil, err
	}
	m.lastTrain, m.batch = mode.Training(), B
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

	h, _ := m.stages.Forward(tok, backbone.Grid{H: c.Grid(), W: c.Grid()}, mode, m.rng)
	h = m.Norm.Forward(h, mode)
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
	dh = m.stages.Backward(m.Norm.Backward(dh))

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

// Family is "vit".
func (m *Model) Family() string { return Family }

// Config returns the model's configuration.
func (m *Model) Config() models.Config { return &m.Cfg }

// InputShape is (InChans, ImgSize, ImgSize).
func (m *Model) InputShape() (c, h, w int) { return m.Cfg.InChans, m.Cfg.ImgSize, m.Cfg.ImgSize }

// Classes is the head width.
func (m *Model) Classes() int { return m.Cfg.Classes }

// Norms lists blocks.i.norm1, blocks.i.norm2 and the final norm (a list
// built once: the trainer asks for lambda every step).
func (m *Model) Norms() []nn.NormSlot {
	if m.norms == nil {
		for i, b := range m.Blocks {
			m.norms = append(m.norms, b.NormSlots(fmt.Sprintf("blocks.%d.", i))...)
		}
		m.norms = append(m.norms, nn.NormSlot{Name: "norm", Norm: &m.Norm})
	}
	return m.norms
}

// FoldSites folds norm1 into the attention's qkv (its only reader, for
// softmax attention and SLA alike), norm2 into mlp.fc1, and the final norm
// into the head: class-token selection and mean pooling are linear and
// per-channel, so they commute with the norm's affine map.
func (m *Model) FoldSites() ([]nn.FoldSite, error) {
	var sites []nn.FoldSite
	for i, b := range m.Blocks {
		qkv, err := qkvOf(b.Mixer)
		if err != nil {
			return nil, fmt.Errorf("vit: blocks.%d: %v", i, err)
		}
		slots := b.NormSlots(fmt.Sprintf("blocks.%d.", i))
		sites = append(sites, nn.FoldSite{Slot: slots[0], Into: []*nn.Linear{qkv}},
			nn.FoldSite{Slot: slots[1], Into: []*nn.Linear{b.MLP.(*nn.MLP).FC1}})
	}
	return append(sites, nn.FoldSite{Slot: nn.NormSlot{Name: "norm", Norm: &m.Norm}, Into: []*nn.Linear{m.Head}}), nil
}

// qkvOf returns the Linear that reads a block's attention input.
func qkvOf(mx backbone.Mixer) (*nn.Linear, error) {
	if g, ok := mx.(backbone.GridFree); ok {
		switch a := g.M.(type) {
		case *nn.Attention:
			return a.QKV, nil
		case *nn.SLA:
			return a.QKV, nil
		}
	}
	return nil, fmt.Errorf("mixer %T has no qkv Linear", mx)
}

// Folded records that the norms are gone (Norm "none": New then builds
// this layout, so the folded checkpoint reloads) and re-lists parameters.
func (m *Model) Folded() {
	m.Cfg.Norm = NormNone
	m.collect()
}

// DropGrads releases every gradient buffer of an inference-only model.
func (m *Model) DropGrads() {
	for _, p := range m.params {
		p.G = nil
	}
}
