// Package pvt is slab's PVT family (docs/method.md 4.2): SLAB-PVT (PRepBN
// norms, simplified linear attention over all tokens in every stage),
// PVT-PRepBN and its LayerNorm twin (spatial-reduction softmax attention),
// as the official slab_pvt.py builds them, plus small Fashion-MNIST
// variants of each.
//
// Design choices:
//
//   - Four backbone stages (models/backbone); stage i's Down is the
//     official patch_embed{i} (conv with kernel = stride, norm) followed by
//     pos_embed{i} (backbone.ConvEmbed), the first reading the images.
//     No cls token, no final norm: the head reads the token mean of stage 4.
//   - SLAB-PVT's separate q and kv Linears are views of one nn.SLA qkv
//     weight (SLAMixer); spatial-reduction attention is nn.SRA, whose
//     reduction norm gets the pass's mode through the mixer.
//   - Every norm comes from cfg.NormSpec(); FoldSites folds the patch
//     embedding norms into their convs, norm1 into q and kv (or q and the
//     sr conv: see convFold), the reduction norm into kv, norm2 into fc1.
//   - 28x28 inputs are zero-padded to 32x32 inside Forward; buffers grow
//     with tensor.Ensure, so a steady-state Forward allocates nothing.
package pvt

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/slabml/slab/models"
	"github.com/slabml/slab/models/backbone"
	"github.com/slabml/slab/nn"
	"github.com/slabml/slab/tensor"
)

// Model is a PVT-family classifier; use New to build one.
type Model struct {
	Cfg Config

	Stages backbone.Stages
	// Embeds[i] is patch_embed{i+1} with pos_embed{i+1} (Stages.List[i].Down).
	Embeds []*backbone.ConvEmbed
	Head   *nn.Linear

	pool  nn.MeanTokens
	rng   *rand.Rand
	pcg   *rand.PCG
	mode  nn.Mode
	folds []convFold

	params  []*nn.Param
	buffers []*nn.Buffer
	norms   []nn.NormSlot

	lastTrain bool
	batch     int
	padded    *tensor.Tensor
	shp       [4]int
}

// New builds a model with the official initialisation: Linears
// trunc-normal(0.02) with zero bias, pos_embed trunc-normal(0.02),
// convolutions PyTorch's default uniform(±1/sqrt(fan_in)), positional
// encodings zero, norms 1/0.
func New(cfg Config, seed uint64) (*Model, error) { return build(cfg, seed, true) }

// build is New; draw false leaves the parameters' random values out:
// every parameter is allocated (memory the OS has not provided yet, so
// not resident until written) for a load that overwrites them all
// (models.BuildBare).
func build(cfg Config, seed uint64, draw bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg, mode: nn.Eval}
	rng := nn.InitRand(draw, seed, 0x9f7a11)
	spec := cfg.NormSpec()
	initLinear := func(l *nn.Linear) {
		nn.TruncNormal(l.Weight.W, 0.02, rng)
		if l.Bias != nil {
			l.Bias.W.Zero()
		}
	}
	initConv := func(c *nn.Conv2d) {
		bound := 1 / math.Sqrt(float64(c.In*c.Kernel*c.Kernel))
		nn.Uniform(c.Weight.W, bound, rng)
		nn.Uniform(c.Bias.W, bound, rng)
	}
	total := 0
	for _, d := range cfg.Depths {
		total += d
	}
	blockIdx, prev := 0, cfg.InChans
	for i, depth := range cfg.Depths {
		s := i + 1
		C, g, heads, p := cfg.Dims[i], cfg.StageGrid(i), cfg.Heads[i], cfg.Patches[i]
		conv := nn.NewConv2d(fmt.Sprintf("patch_embed%d.proj", s), prev, C, p, p, 0, i > 0)
		conv.NoInputGrad = i == 0
		initConv(conv)
		pos := nn.NewParam(fmt.Sprintf("pos_embed%d", s), false, 1, g*g, C)
		nn.TruncNormal(pos.W, 0.02, rng)
		emb := &backbone.ConvEmbed{Conv: conv, Norm: spec.New(fmt.Sprintf("patch_embed%d.norm", s), C), Pos: pos}
		m.Embeds = append(m.Embeds, emb)
		st := &backbone.Stage{Down: emb}
		for j := range depth {
			pre := fmt.Sprintf("block%d.%d.", s, j)
			var mx backbone.Mixer
			if cfg.Stages[i] == 'L' {
				a := newSLAMixer(pre+"attn", C, heads, g, g, cfg.DWCKernel)
				initLinear(a.SLA.QKV)
				initLinear(a.SLA.Proj)
				bound := 1 / float64(cfg.DWCKernel)
				nn.Uniform(a.SLA.DWCWeight.W, bound, rng)
				nn.Uniform(a.SLA.DWCBias.W, bound, rng)
				mx = a
			} else {
				r := cfg.Ratio(i)
				var norm nn.Norm
				if r > 1 {
					norm = spec.New(pre+"attn.norm", C)
				}
				a := nn.NewSRA(pre+"attn", C, heads, r, true, norm)
				initLinear(a.Q)
				initLinear(a.KV)
				initLinear(a.Proj)
				if a.SR != nil {
					initConv(a.SR)
				}
				mx = &SRAMixer{SRA: a, Mode: &m.mode}
			}
			mlp := nn.NewMLP(pre+"mlp", C, C*cfg.MLPRatios[i])
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
		prev = C
	}
	m.Head = nn.NewLinear("head", prev, cfg.Classes, true)
	initLinear(m.Head)
	m.pcg = rand.NewPCG(seed, 0xd709a7)
	m.rng = rand.New(m.pcg)
	m.collect()
	return m, nil
}

func (m *Model) collect() {
	m.params, m.buffers = nil, nil
	for _, st := range m.Stages.List {
		m.params = append(m.params, st.Params()...)
		m.buffers = append(m.buffers, st.Buffers()...)
	}
	m.params = append(m.params, m.Head.Params()...)
}

// Params lists every learnable parameter under its official name.
func (m *Model) Params() []*nn.Param { return m.params }

// Buffers lists BN running statistics and the LinearNorm counters.
func (m *Model) Buffers() []*nn.Buffer { return m.buffers }

// SetDropPathSeed reseeds the stream drop path draws from.
func (m *Model) SetDropPathSeed(seed uint64) { m.pcg.Seed(seed, 0xd709a7) }

// Family is "pvt".
func (m *Model) Family() string { return Family }

// Config returns the model's configuration.
func (m *Model) Config() models.Config { return &m.Cfg }

// InputShape is (InChans, side, side) of the images Forward accepts.
func (m *Model) InputShape() (c, h, w int) { return m.Cfg.InChans, m.Cfg.Input(), m.Cfg.Input() }

// Classes is the head width.
func (m *Model) Classes() int { return m.Cfg.Classes }

// Blocks returns stage i's blocks (official block{i+1}).
func (m *Model) Blocks(i int) []*backbone.Block { return m.Stages.List[i].Blocks }

func (m *Model) checkInput(x *tensor.Tensor) (int, error) {
	c := &m.Cfg
	s := c.Input()
	if x == nil {
		return 0, fmt.Errorf("pvt: %s: nil input", c.Name)
	}
	if len(x.Shape) != 4 || x.Shape[0] < 1 || x.Shape[1] != c.InChans || x.Shape[2] != s || x.Shape[3] != s {
		return 0, fmt.Errorf("pvt: %s: input shape %v, want [B,%d,%d,%d] with B >= 1 (the position embeddings fix the input size)", c.Name, x.Shape, c.InChans, s, s)
	}
	if len(x.Data) != tensor.Numel(x.Shape) {
		return 0, fmt.Errorf("pvt: %s: input has %d values for shape %v", c.Name, len(x.Data), x.Shape)
	}
	return x.Shape[0], nil
}

// pad centres images of side Input() in zero images of side ImgSize.
func pad(dst **tensor.Tensor, shp *[4]int, x *tensor.Tensor, b, ch, s, S int) *tensor.Tensor {
	if s == S {
		return x
	}
	shp[0], shp[1], shp[2], shp[3] = b, ch, S, S
	p := tensor.Ensure(dst, shp[:]...)
	p.Zero()
	off := (S - s) / 2
	for k := range b * ch {
		src := x.Data[k*s*s : (k+1)*s*s]
		d := p.Data[k*S*S : (k+1)*S*S]
		for r := range s {
			copy(d[(r+off)*S+off:(r+off)*S+off+s], src[r*s:(r+1)*s])
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
	m.lastTrain, m.batch, m.mode = mode.Training(), B, mode
	c := &m.Cfg
	img := pad(&m.padded, &m.shp, x, B, c.InChans, c.Input(), c.ImgSize)
	h, _ := m.Stages.Forward(img, backbone.Grid{H: c.ImgSize, W: c.ImgSize}, mode, m.rng)
	return m.Head.Forward(m.pool.Forward(h)), nil
}

// Features returns each stage's output of the last Forward with its grid.
func (m *Model) Features() ([]*tensor.Tensor, []backbone.Grid) { return m.Stages.Features() }

// Backward accumulates parameter gradients for the last Train Forward.
func (m *Model) Backward(dlogits *tensor.Tensor) {
	if !m.lastTrain {
		panic("pvt: Backward without a preceding training-mode Forward")
	}
	if dlogits.Size() != m.batch*m.Cfg.Classes {
		panic(fmt.Sprintf("pvt: Backward: dlogits %v, want [%d,%d]", dlogits.Shape, m.batch, m.Cfg.Classes))
	}
	m.Stages.Backward(m.pool.Backward(m.Head.Backward(dlogits)))
}

// Norms lists patch_embed{i}.norm, then each block's norm1, attn.norm
// (spatial reduction > 1) and norm2.
func (m *Model) Norms() []nn.NormSlot {
	if m.norms != nil {
		return m.norms
	}
	for i, st := range m.Stages.List {
		e := m.Embeds[i]
		m.norms = append(m.norms, nn.NormSlot{Name: fmt.Sprintf("patch_embed%d.norm", i+1), Norm: &e.Norm})
		for j, b := range st.Blocks {
			pre := fmt.Sprintf("block%d.%d.", i+1, j)
			m.norms = append(m.norms, nn.NormSlot{Name: pre + "norm1", Norm: &b.Norm1})
			if a, ok := b.Mixer.(*SRAMixer); ok && a.SRA.SR != nil {
				m.norms = append(m.norms, nn.NormSlot{Name: pre + "attn.norm", Norm: &a.SRA.Norm})
			}
			m.norms = append(m.norms, nn.NormSlot{Name: pre + "norm2", Norm: &b.Norm2})
		}
	}
	return m.norms
}

// FoldSites: patch_embed{i}.norm into its conv (exact, alpha·bias
// included; pos_embed is added after the norm either way); norm1 into
// its readers, SLA's qkv (= q and kv) or SRA's q and kv, or q and the sr
// conv when the keys are reduced (the conv is folded by Folded, see
// convFold); attn.norm into kv; norm2 into fc1.
func (m *Model) FoldSites() ([]nn.FoldSite, error) {
	var sites []nn.FoldSite
	m.folds = m.folds[:0]
	for i, st := range m.Stages.List {
		sites = append(sites, m.Embeds[i].FoldSite(fmt.Sprintf("patch_embed%d.norm", i+1)))
		for j, b := range st.Blocks {
			pre := fmt.Sprintf("block%d.%d.", i+1, j)
			n1 := nn.NormSlot{Name: pre + "norm1", Norm: &b.Norm1}
			switch a := b.Mixer.(type) {
			case *SLAMixer:
				sites = append(sites, nn.FoldSite{Slot: n1, Into: []*nn.Linear{a.SLA.QKV}})
			case *SRAMixer:
				if a.SRA.SR == nil {
					sites = append(sites, nn.FoldSite{Slot: n1, Into: []*nn.Linear{a.SRA.Q, a.SRA.KV}})
					break
				}
				if a.SRA.SR.Pad != 0 {
					return nil, fmt.Errorf("%sattn.sr: padded reduction conv, norm1 does not fold into it", pre)
				}
				sites = append(sites, nn.FoldSite{Slot: n1, Into: []*nn.Linear{a.SRA.Q}},
					nn.FoldSite{Slot: nn.NormSlot{Name: pre + "attn.norm", Norm: &a.SRA.Norm}, Into: []*nn.Linear{a.SRA.KV}})
				m.folds = append(m.folds, convFold{norm: b.Norm1, conv: a.SRA.SR})
			default:
				return nil, fmt.Errorf("%sattn: mixer %T", pre, b.Mixer)
			}
			mlp, ok := b.MLP.(*nn.MLP)
			if !ok {
				return nil, fmt.Errorf("%smlp: %T has no fc1", pre, b.MLP)
			}
			sites = append(sites, nn.FoldSite{Slot: nn.NormSlot{Name: pre + "norm2", Norm: &b.Norm2}, Into: []*nn.Linear{mlp.FC1}})
		}
	}
	return sites, nil
}

// Folded folds each block's norm1 into its sr conv (its affine map taken
// from the norm FoldSites kept, which the folder has since replaced with
// Identity), records norm "none" and re-lists the parameters.
func (m *Model) Folded() {
	for _, f := range m.folds {
		n, ok := f.norm.(nn.AffineNorm)
		if !ok {
			panic(fmt.Sprintf("pvt: %s: norm %T is not affine (the folder checked it)", f.conv.Weight.Name, f.norm))
		}
		a, b := n.Affine()
		if err := foldConvInput(f.conv, a, b); err != nil {
			panic("pvt: " + err.Error()) // FoldSites checked padding and widths
		}
	}
	m.folds = nil
	m.Cfg.Norm = nn.NormNone
	m.collect()
}

// DropGrads releases every gradient buffer of an inference-only model.
func (m *Model) DropGrads() {
	for _, p := range m.params {
		p.G = nil
	}
	for _, st := range m.Stages.List {
		for _, b := range st.Blocks {
			if a, ok := b.Mixer.(*SLAMixer); ok {
				a.dropGrads()
			}
		}
	}
}

var _ models.Classifier = (*Model)(nil)
