// Package cswin is slab's CSwin family (docs/method.md 4.4): SLAB-CSwin as
// the official slab_cswin.py builds it (LinearNorm everywhere; stages 1-2
// global simplified linear attention with its DWC and LePE, stage 3
// cross-shaped stripes with LePE, stage 4 global softmax), plus a small
// Fashion-MNIST variant.
//
// Design choices:
//
//   - Four backbone stages (models/backbone); stage 1's Down is the
//     official stage1_conv_embed (7x7 stride 4 conv on the images, norm)
//     and stage i+1's the official merge{i} (3x3 stride 2 conv on the token
//     map, norm), both backbone.ConvEmbed. Final norm, token mean, head.
//   - 'L' blocks run nn.SLALePE (SLA plus get_v), 'S' blocks
//     nn.StripeAttention; both read the grid they were built for
//     (backbone.GridFree). The block-level qkv and proj carry the official
//     names stage{i}.j.{qkv,proj}, the rest attns.{0,1}.*.
//   - Every norm comes from cfg.NormSpec(); FoldSites folds the stem and
//     merge norms into their convolutions, norm1 into qkv, norm2 into fc1
//     and the final norm into the head.
//   - 28x28 inputs are zero-padded to 32x32 inside Forward; buffers grow
//     with tensor.Ensure, so a steady-state Forward allocates nothing.
package cswin

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Model is a CSwin-family classifier; use New to build one.
type Model struct {
	Cfg Config

	Stages backbone.Stages
	// Embeds[0] is stage1_conv_embed, Embeds[i] merge{i} (Stages.List[i].Down).
	Embeds []*backbone.ConvEmbed
	Norm   nn.Norm
	Head   *nn.Linear

	pool nn.MeanTokens
	rng  *rand.Rand
	pcg  *rand.PCG

	params  []*nn.Param
	buffers []*nn.Buffer
	norms   []nn.NormSlot

	lastTrain bool
	batch     int
	padded    *tensor.Tensor
	shp       [4]int
}

// New builds a model with the official initialisation: Linears
// trunc-normal(0.02) with zero bias, convolutions PyTorch's default
// uniform(±1/sqrt(fan_in)), positional encodings and scale zero, norms 1/0.
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
	rng := nn.InitRand(draw, seed, 0xc5a11)
	spec := cfg.NormSpec()
	initLinear := func(l *nn.Linear) {
		nn.TruncNormal(l.Weight.W, 0.02, rng)
		if l.Bias != nil {
			l.Bias.W.Zero()
		}
	}
	uniform := func(fanIn int, ps ...*nn.Param) {
		for _, p := range ps {
			nn.Uniform(p.W, 1/math.Sqrt(float64(fanIn)), rng)
		}
	}
	total := 0
	for _, d := range cfg.Depths {
		total += d
	}
	blockIdx := 0
	for i, depth := range cfg.Depths {
		s := i + 1
		C, g, heads := cfg.StageDim(i), cfg.StageGrid(i), cfg.Heads[i]
		var emb *backbone.ConvEmbed
		if i == 0 {
			conv := nn.NewConv2d("stage1_conv_embed.0", cfg.InChans, C, cfg.StemKernel, cfg.StemStride, cfg.StemPad, false)
			conv.NoInputGrad = true
			emb = &backbone.ConvEmbed{Conv: conv, Norm: spec.New("stage1_conv_embed.2", C)}
		} else {
			conv := nn.NewConv2d(fmt.Sprintf("merge%d.conv", i), C/2, C, 3, 2, 1, true)
			emb = &backbone.ConvEmbed{Conv: conv, Norm: spec.New(fmt.Sprintf("merge%d.norm", i), C)}
		}
		uniform(emb.Conv.In*emb.Conv.Kernel*emb.Conv.Kernel, emb.Conv.Weight, emb.Conv.Bias)
		m.Embeds = append(m.Embeds, emb)
		st := &backbone.Stage{Down: emb}
		for j := range depth {
			pre := fmt.Sprintf("stage%d.%d.", s, j)
			var mx backbone.Mixer
			if cfg.Stages[i] == 'L' {
				a := nn.NewSLALePE(pre+"attns.0", C, heads, g, g, cfg.DWCKernel, true)
				rename(a.QKV, pre+"qkv")
				rename(a.Proj, pre+"proj")
				initLinear(a.QKV)
				initLinear(a.Proj)
				uniform(cfg.DWCKernel*cfg.DWCKernel, a.DWCWeight, a.DWCBias)
				uniform(9, a.LePE.Weight, a.LePE.Bias)
				mx = backbone.GridFree{M: a}
			} else {
				a := nn.NewStripeAttention(pre[:len(pre)-1], C, heads, cfg.Splits[i], g, g, true)
				initLinear(a.QKV)
				initLinear(a.Proj)
				for _, l := range a.LePE {
					uniform(9, l.Weight, l.Bias)
				}
				mx = backbone.GridFree{M: a}
			}
			mlp := nn.NewMLP(pre+"mlp", C, C*cfg.MLPRatio)
			initLinear(mlp.FC1)
			initLinear(mlp.FC2)
			b := &backbone.Block{Norm1: spec.New(pre+"norm1", C), Mixer: mx, Norm2: spec.New(pre+"norm2", C), MLP: mlp}
			var rate float32
			if total > 1 {
				rate = cfg.DropPath * float32(blockIdx) / float32(total-1)
			}
			b.DP1.Rate, b.DP2.Rate = rate, rate
			st.Blocks = append(st.Blocks, b)
			blockIdx++
		}
		m.Stages.List = append(m.Stages.List, st)
	}
	last := cfg.StageDim(cfg.NumStages() - 1)
	m.Norm = spec.New("norm", last)
	m.Head = nn.NewLinear("head", last, cfg.Classes, true)
	initLinear(m.Head)
	m.pcg = rand.NewPCG(seed, 0xd709a7)
	m.rng = rand.New(m.pcg)
	m.collect()
	return m, nil
}

// rename gives l's parameters the names name.weight and name.bias.
func rename(l *nn.Linear, name string) {
	l.Weight.Name = name + ".weight"
	if l.Bias != nil {
		l.Bias.Name = name + ".bias"
	}
}

func (m *Model) collect() {
	m.params, m.buffers = nil, nil
	for _, st := range m.Stages.List {
		m.params = append(m.params, st.Params()...)
		m.buffers = append(m.buffers, st.Buffers()...)
	}
	m.params = append(append(m.params, m.Norm.Params()...), m.Head.Params()...)
	m.buffers = append(m.buffers, m.Norm.Buffers()...)
}

// Params lists every learnable parameter under its official name.
func (m *Model) Params() []*nn.Param { return m.params }

// Buffers lists BN running statistics and the LinearNorm counters.
func (m *Model) Buffers() []*nn.Buffer { return m.buffers }

// SetDropPathSeed reseeds the stream drop path draws from.
func (m *Model) SetDropPathSeed(seed uint64) { m.pcg.Seed(seed, 0xd709a7) }

// Family is "cswin".
func (m *Model) Family() string { return Family }

// Config returns the model's configuration.
func (m *Model) Config() models.Config { return &m.Cfg }

// InputShape is (InChans, side, side) of the images Forward accepts.
func (m *Model) InputShape() (c, h, w int) { return m.Cfg.InChans, m.Cfg.Input(), m.Cfg.Input() }

// Classes is the head width.
func (m *Model) Classes() int { return m.Cfg.Classes }

// Blocks returns stage i's blocks (official stage{i+1}).
func (m *Model) Blocks(i int) []*backbone.Block { return m.Stages.List[i].Blocks }

// qkv returns the Linear that reads a block's norm1.
func qkv(b *backbone.Block) (*nn.Linear, error) {
	g, ok := b.Mixer.(backbone.GridFree)
	if !ok {
		return nil, fmt.Errorf("mixer %T", b.Mixer)
	}
	switch a := g.M.(type) {
	case *nn.SLALePE:
		return a.QKV, nil
	case *nn.StripeAttention:
		return a.QKV, nil
	}
	return nil, fmt.Errorf("attention %T", g.M)
}

func (m *Model) checkInput(x *tensor.Tensor) (int, error) {
	c := &m.Cfg
	s := c.Input()
	if x == nil {
		return 0, fmt.Errorf("cswin: %s: nil input", c.Name)
	}
	if len(x.Shape) != 4 || x.Shape[0] < 1 || x.Shape[1] != c.InChans || x.Shape[2] != s || x.Shape[3] != s {
		return 0, fmt.Errorf("cswin: %s: input shape %v, want [B,%d,%d,%d] with B >= 1 (the positional encodings fix the input size)", c.Name, x.Shape, c.InChans, s, s)
	}
	if len(x.Data) != tensor.Numel(x.Shape) {
		return 0, fmt.Errorf("cswin: %s: input has %d values for shape %v", c.Name, len(x.Data), x.Shape)
	}
	return x.Shape[0], nil
}

// pad centres images of side Input() in zero images of side ImgSize.
func (m *Model) pad(x *tensor.Tensor, b int) *tensor.Tensor {
	c := &m.Cfg
	s, S, ch := c.Input(), c.ImgSize, c.InChans
	if s == S {
		return x
	}
	m.shp = [4]int{b, ch, S, S}
	p := tensor.Ensure(&m.padded, m.shp[:]...)
	p.Zero()
	off := (S - s) / 2
	for k := range b * ch {
		src := x.Data[k*s*s : (k+1)*s*s]
		dst := p.Data[k*S*S : (k+1)*S*S]
		for r := range s {
			copy(dst[(r+off)*S+off:(r+off)*S+off+s], src[r*s:(r+1)*s])
		}
	}
	return p
}

// Forward maps images [B,InChans,Input,Input] to logits [B,Classes]. In
// Train mode it advances every LinearNorm schedule by one call and uses
// batch statistics and drop path; Recalibrate updates BN running
// statistics only. The result is owned by the model.
func (m *Model) Forward(x *tensor.Tensor, mode nn.Mode) (*tensor.Tensor, error) {
	B, err := m.checkInput(x)
	if err != nil {
		return nil, err
	}
	m.lastTrain, m.batch = mode.Training(), B
	S := m.Cfg.ImgSize
	h, _ := m.Stages.Forward(m.pad(x, B), backbone.Grid{H: S, W: S}, mode, m.rng)
	h = m.Norm.Forward(h, mode)
	return m.Head.Forward(m.pool.Forward(h)), nil
}

// Features returns each stage's output of the last Forward with its grid.
func (m *Model) Features() ([]*tensor.Tensor, []backbone.Grid) { return m.Stages.Features() }

// Backward accumulates parameter gradients for the last Train Forward.
func (m *Model) Backward(dlogits *tensor.Tensor) {
	if !m.lastTrain {
		panic("cswin: Backward without a preceding training-mode Forward")
	}
	if dlogits.Size() != m.batch*m.Cfg.Classes {
		panic(fmt.Sprintf("cswin: Backward: dlogits %v, want [%d,%d]", dlogits.Shape, m.batch, m.Cfg.Classes))
	}
	m.Stages.Backward(m.Norm.Backward(m.pool.Backward(m.Head.Backward(dlogits))))
}

// embedNorm is the official name of stage i's downsampling norm.
func embedNorm(i int) string {
	if i == 0 {
		return "stage1_conv_embed.2"
	}
	return fmt.Sprintf("merge%d.norm", i)
}

// Norms lists stage1_conv_embed.2, then per stage merge{i}.norm and each
// block's norm1 and norm2, then the final norm.
func (m *Model) Norms() []nn.NormSlot {
	if m.norms != nil {
		return m.norms
	}
	for i, st := range m.Stages.List {
		m.norms = append(m.norms, nn.NormSlot{Name: embedNorm(i), Norm: &m.Embeds[i].Norm})
		for j, b := range st.Blocks {
			m.norms = append(m.norms, b.NormSlots(fmt.Sprintf("stage%d.%d.", i+1, j))...)
		}
	}
	m.norms = append(m.norms, nn.NormSlot{Name: "norm", Norm: &m.Norm})
	return m.norms
}

// FoldSites: the stem and merge norms into their convolutions (exact,
// alpha·bias included; docs/method.md 2.1), norm1 into qkv, norm2 into
// fc1, the final norm into the head (mean pooling is linear per channel).
func (m *Model) FoldSites() ([]nn.FoldSite, error) {
	var sites []nn.FoldSite
	for i, st := range m.Stages.List {
		sites = append(sites, m.Embeds[i].FoldSite(embedNorm(i)))
		for j, b := range st.Blocks {
			pre := fmt.Sprintf("stage%d.%d.", i+1, j)
			q, err := qkv(b)
			if err != nil {
				return nil, fmt.Errorf("%snorm1: %v", pre, err)
			}
			mlp, ok := b.MLP.(*nn.MLP)
			if !ok {
				return nil, fmt.Errorf("%smlp: %T has no fc1", pre, b.MLP)
			}
			sl := b.NormSlots(pre)
			sites = append(sites, nn.FoldSite{Slot: sl[0], Into: []*nn.Linear{q}}, nn.FoldSite{Slot: sl[1], Into: []*nn.Linear{mlp.FC1}})
		}
	}
	return append(sites, nn.FoldSite{Slot: nn.NormSlot{Name: "norm", Norm: &m.Norm}, Into: []*nn.Linear{m.Head}}), nil
}

// Folded records norm "none" and re-lists the parameters.
func (m *Model) Folded() {
	m.Cfg.Norm = nn.NormNone
	m.collect()
}

// DropGrads releases every gradient buffer of an inference-only model.
func (m *Model) DropGrads() {
	for _, p := range m.params {
		p.G = nil
	}
}

var _ models.Classifier = (*Model)(nil)
